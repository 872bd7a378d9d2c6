#include "exporter/Overlay.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "core/Error.h"
#include "exporter/Mesh.h"
#include "exporter/Preview.h"
#include "render/Colour.h"
#include "render/Render.h"

namespace facebatch::exporter {

double OverlayScale(int width, int height, int max_size) {
  const int longer = std::max(width, height);
  return (max_size > 0 && longer > max_size) ? double(max_size) / longer : 1.0;
}

cv::Mat MakeOverlay(const render::FaceTopology& topology, const OverlayInput& in, int max_size) {
  if (in.original.empty() || in.original.type() != CV_8UC3) throw Error("exporter::MakeOverlay: original must be 8-bit BGR");
  const int S = in.image_size;
  const double k = OverlayScale(in.original.cols, in.original.rows, max_size);
  cv::Mat original = in.original;
  if (k != 1.0) {
    cv::resize(in.original, original,
               cv::Size(std::max(1, int(std::lround(in.original.cols * k))), std::max(1, int(std::lround(in.original.rows * k)))),
               0, 0, cv::INTER_AREA);
  }
  // Crop pixels -> (scaled) original pixels: x' = (x + 0.5) k - 0.5 after A.
  auto A = in.crop_to_original.to(torch::kDouble).view({2, 3}).clone();
  A *= k;
  A.select(1, 2) += 0.5 * k - 0.5;

  auto shape = in.shape_vertices.to(torch::kFloat).view({1, -1, 3});
  auto albedo = in.albedo_vertices.to(torch::kFloat).view({1, -1, 3});
  auto M = in.M.to(torch::kFloat).view({1, 2, 4});
  auto L = in.L.to(torch::kFloat).view({1, 27});
  auto r = render::Render(topology, shape, albedo, M, L, S, S);
  // Linear -> sRGB BGR, plus coverage as alpha.
  cv::Mat render_img;
  render::LinearRgbToSrgbBgr8(r.image[0]).convertTo(render_img, CV_32FC3);
  auto cov = r.mask[0][0].contiguous();
  cv::Mat coverage(S, S, CV_32F, cov.data_ptr<float>());
  cv::Matx23d Ad;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) Ad(i, j) = A[i][j].item<double>();
  cv::Mat warped, alpha;
  cv::warpAffine(render_img, warped, Ad, original.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  cv::warpAffine(coverage, alpha, Ad, original.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  cv::Mat base;
  original.convertTo(base, CV_32FC3);
  cv::Mat alpha3;
  cv::merge(std::vector<cv::Mat>{alpha, alpha, alpha}, alpha3);
  cv::Mat composite_f = base.mul(cv::Scalar::all(1.0) - alpha3) + warped.mul(alpha3);
  cv::Mat composite;
  composite_f.convertTo(composite, CV_8UC3);

  // Wireframe over the grid: vertex positions in the (scaled) original.
  auto xy = ImageSpaceVertices(shape[0], M[0], in.crop_to_original).slice(1, 0, 2).to(torch::kDouble);
  xy = (xy + 0.5) * k - 0.5;
  auto xy_acc = xy.accessor<double, 2>();
  auto vis = r.visibility[0].to(torch::kBool).contiguous();
  const bool* visible = vis.data_ptr<bool>();
  const int U = topology.uv_rows, V = topology.uv_cols;
  auto vop = topology.vertex_of_pixel.contiguous();
  const int64_t* vp = vop.data_ptr<int64_t>();
  const int step = std::max(1, int(std::lround(std::max(U, V) / 28.0)));
  const int shift = 4;  // sub-pixel line end points
  auto P = [&](int64_t v) { return cv::Point(int(std::lround(xy_acc[v][0] * 16)), int(std::lround(xy_acc[v][1] * 16))); };
  cv::Mat fitted = composite.clone();  // panel 2: the render alone, nothing drawn over it
  cv::Mat lines = composite.clone();
  const cv::Scalar wire(235, 200, 120);
  for (int rr = 0; rr < U; ++rr) {
    for (int cc = 0; cc < V; ++cc) {
      const int64_t a = vp[int64_t(rr) * V + cc];
      if (a < 0 || !visible[a]) continue;
      if (rr % step == 0 && cc + 1 < V) {
        const int64_t b = vp[int64_t(rr) * V + cc + 1];
        if (b >= 0 && visible[b]) cv::line(lines, P(a), P(b), wire, 1, cv::LINE_AA, shift);
      }
      if (cc % step == 0 && rr + 1 < U) {
        const int64_t b = vp[int64_t(rr + 1) * V + cc];
        if (b >= 0 && visible[b]) cv::line(lines, P(a), P(b), wire, 1, cv::LINE_AA, shift);
      }
    }
  }
  cv::addWeighted(lines, 0.6, composite, 0.4, 0, composite);
  const int radius = std::max(2, int(std::lround(std::max(original.cols, original.rows) / 200.0)));
  for (int i = 0; i < 68; ++i) {
    const int64_t v = topology.landmarks68[i].item<int64_t>();
    if (visible[v]) {
      cv::circle(composite, P(v), radius * 16, cv::Scalar(60, 220, 60), cv::FILLED, cv::LINE_AA, shift);
    } else {
      cv::circle(composite, P(v), radius * 16, cv::Scalar(40, 40, 230), 1, cv::LINE_AA, shift);
    }
  }
  cv::Mat out;
  cv::hconcat(std::vector<cv::Mat>{original, fitted, composite}, out);
  return out;
}

}  // namespace facebatch::exporter
