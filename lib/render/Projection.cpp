// Weak perspective projection, M <-> (s, R, t), 300W-LP Pose_Para (see Projection.h).
#include "render/Projection.h"

#include <torch/torch.h>

#include "core/Error.h"

namespace facebatch::render {

namespace {

void CheckM(const at::Tensor& M, const char* where) {
  if (!M.defined() || M.dim() != 3 || M.size(1) != 2 || M.size(2) != 4 || !M.is_floating_point())
    throw Error(std::string(where) + ": M must be a floating-point tensor [B, 2, 4]");
}

void CheckVertices(const at::Tensor& M, const at::Tensor& v, const char* where) {
  CheckM(M, where);
  if (!v.defined() || v.dim() != 3 || v.size(2) != 3 || v.size(0) != M.size(0))
    throw Error(std::string(where) + ": vertices must be [B, N, 3] with the B of M");
  if (v.device() != M.device()) throw Error(std::string(where) + ": vertices and M on different devices");
}

at::Tensor Normalise(const at::Tensor& v) { return v / (v * v).sum(-1, true).clamp_min(1e-30).sqrt(); }

}  // namespace

at::Tensor ComposeM(const at::Tensor& scale, const at::Tensor& rotation, const at::Tensor& translation) {
  if (rotation.dim() != 3 || rotation.size(1) != 3 || rotation.size(2) != 3)
    throw Error("render::ComposeM: rotation must be [B, 3, 3]");
  const auto s = scale.reshape({-1, 1});
  auto row0 = torch::cat({s * rotation.select(1, 0), translation.select(1, 0).unsqueeze(1)}, 1);
  auto row1 = torch::cat({-s * rotation.select(1, 1), translation.select(1, 1).unsqueeze(1)}, 1);
  return torch::stack({row0, row1}, 1);
}

WeakPerspective DecomposeM(const at::Tensor& M) {
  CheckM(M, "render::DecomposeM");
  auto a = M.select(1, 0).slice(1, 0, 3), b = -M.select(1, 1).slice(1, 0, 3);
  auto na = a.norm(2, 1), nb = b.norm(2, 1);
  WeakPerspective out;
  out.scale = 0.5 * (na + nb);
  // Nearest rotation to [a; b; a x b] rows via SVD (polar decomposition).
  auto r0 = a / na.unsqueeze(1), r1 = b / nb.unsqueeze(1);
  auto r2 = Normalise(torch::cross(r0, r1, 1));
  auto R = torch::stack({r0, r1, r2}, 1);
  auto svd = torch::linalg_svd(R, false);
  auto U = std::get<0>(svd), Vh = std::get<2>(svd);
  auto det = torch::linalg_det(torch::matmul(U, Vh));
  auto D = torch::ones_like(std::get<1>(svd));
  D.select(1, 2).copy_(det.sign());
  out.rotation = torch::matmul(U * D.unsqueeze(1), Vh);
  out.translation = M.select(2, 3).clone();
  return out;
}

at::Tensor ProjectVertices(const at::Tensor& M, const at::Tensor& vertices) {
  CheckVertices(M, vertices, "render::ProjectVertices");
  // [B, N, 3] x [B, 3, 2] + [B, 1, 2]
  return torch::matmul(vertices, M.slice(2, 0, 3).transpose(1, 2)) + M.select(2, 3).unsqueeze(1);
}

at::Tensor VertexDepth(const at::Tensor& M, const at::Tensor& vertices) {
  CheckVertices(M, vertices, "render::VertexDepth");
  auto a = M.select(1, 0).slice(1, 0, 3), b = M.select(1, 1).slice(1, 0, 3);
  auto na = a.norm(2, 1, true), nb = b.norm(2, 1, true);
  auto dir = torch::cross(a / na, b / nb, 1) * (0.5 * (na + nb));  // [B, 3]
  return torch::matmul(vertices, dir.unsqueeze(2)).squeeze(2);
}

at::Tensor ViewRotation(const at::Tensor& M) {
  CheckM(M, "render::ViewRotation");
  auto r0 = Normalise(M.select(1, 0).slice(1, 0, 3));
  auto r1 = Normalise(-M.select(1, 1).slice(1, 0, 3));
  auto r2 = Normalise(torch::cross(r0, r1, 1));
  return torch::stack({r0, r1, r2}, 1);
}

at::Tensor RotationFromPoseAngles(const at::Tensor& pitch, const at::Tensor& yaw, const at::Tensor& roll) {
  auto z = torch::zeros_like(pitch), o = torch::ones_like(pitch);
  auto cx = pitch.cos(), sx = pitch.sin(), cy = yaw.cos(), sy = yaw.sin(), cz = roll.cos(), sz = roll.sin();
  auto mat = [](std::initializer_list<at::Tensor> e) { return torch::stack(std::vector<at::Tensor>(e), 1).view({-1, 3, 3}); };
  auto Rx = mat({o, z, z, z, cx, sx, z, -sx, cx});
  auto Ry = mat({cy, z, -sy, z, o, z, sy, z, cy});
  auto Rz = mat({cz, sz, z, -sz, cz, z, z, z, o});
  return torch::matmul(torch::matmul(Rx, Ry), Rz);
}

at::Tensor PoseAnglesFromRotation(const at::Tensor& R) {
  if (R.dim() != 3 || R.size(1) != 3 || R.size(2) != 3)
    throw Error("render::PoseAnglesFromRotation: rotation must be [B, 3, 3]");
  // R[0,:] = (cy cz, cy sz, -sy); R[:,2] = (-sy, sx cy, cx cy).
  auto yaw = torch::asin((-R.select(1, 0).select(1, 2)).clamp(-1, 1));
  auto pitch = torch::atan2(R.select(1, 1).select(1, 2), R.select(1, 2).select(1, 2));
  auto roll = torch::atan2(R.select(1, 0).select(1, 1), R.select(1, 0).select(1, 0));
  return torch::stack({pitch, yaw, roll}, 1);
}

at::Tensor PoseParaToM(const at::Tensor& pose_para, double image_height, double model_scale, bool one_based) {
  if (!pose_para.defined() || pose_para.dim() != 2 || pose_para.size(1) != 7)
    throw Error("render::PoseParaToM: Pose_Para must be [B, 7] (pitch, yaw, roll, tx, ty, tz, f)");
  auto R = RotationFromPoseAngles(pose_para.select(1, 0), pose_para.select(1, 1), pose_para.select(1, 2));
  auto f = pose_para.select(1, 6) * model_scale;
  const double off = one_based ? 1.0 : 0.0;
  auto tx = pose_para.select(1, 3) - off;
  auto ty = (image_height - (1.0 - off)) - pose_para.select(1, 4);
  return ComposeM(f, R, torch::stack({tx, ty}, 1));
}

at::Tensor MToPosePara(const at::Tensor& M, double image_height, double model_scale, bool one_based) {
  auto wp = DecomposeM(M);
  auto angles = PoseAnglesFromRotation(wp.rotation);
  const double off = one_based ? 1.0 : 0.0;
  auto tx = wp.translation.select(1, 0) + off;
  auto ty = (image_height - (1.0 - off)) - wp.translation.select(1, 1);
  auto f = wp.scale / model_scale;
  return torch::cat({angles, torch::stack({tx, ty, torch::zeros_like(tx), f}, 1)}, 1);
}

}  // namespace facebatch::render
