#include "io/Landmarks.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/Image.h"

namespace facebatch::io {
namespace {

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

}  // namespace

std::vector<Landmarks> ReadPtsFile(const std::string& path, int origin) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw ItemError(reason::kMissingMetadata, path, "landmark file is missing");
  std::ifstream in(path);
  if (!in) throw ItemError(reason::kMissingMetadata, path, "cannot open the landmark file");
  std::vector<Landmarks> faces;
  std::string line;
  size_t line_no = 0;
  auto bad = [&](const std::string& what) {
    return ItemError(reason::kBadLandmarks, path, fmt::format("line {}: {}", line_no, what));
  };
  int n_points = -1;
  bool in_block = false;
  Landmarks cur;
  while (std::getline(in, line)) {
    ++line_no;
    std::string t = Trim(line);
    if (t.empty()) continue;
    if (!in_block) {
      if (t.rfind("version", 0) == 0) continue;
      if (t.rfind("n_points", 0) == 0) {
        size_t colon = t.find(':');
        try {
          n_points = std::stoi(t.substr(colon == std::string::npos ? 8 : colon + 1));
        } catch (const std::exception&) {
          throw bad("bad n_points line '" + t + "'");
        }
        if (n_points != 68 && n_points != 5)
          throw bad(fmt::format("n_points is {}, expected 68 (iBUG) or 5", n_points));
        continue;
      }
      if (t == "{") {
        if (n_points < 0) throw bad("'{' before n_points");
        in_block = true;
        cur = Landmarks{};
        cur.convention = n_points == 68 ? LandmarkConvention::kIbug68 : LandmarkConvention::kFive;
        cur.origin = origin;
        continue;
      }
      throw bad("unexpected '" + t + "' outside a point block");
    }
    if (t == "}") {
      if (static_cast<int>(cur.points.size()) != n_points)
        throw bad(fmt::format("{} points, n_points says {}", cur.points.size(), n_points));
      faces.push_back(std::move(cur));
      in_block = false;
      n_points = -1;
      continue;
    }
    std::istringstream ss(t);
    std::string xs, ys, extra;
    if (!(ss >> xs)) throw bad("empty point row");
    if (!(ss >> ys)) throw bad("short row '" + t + "': expected two numbers 'x y'");
    if (ss >> extra) throw bad("row '" + t + "' has more than two numbers");
    double x, y;
    try {
      size_t px = 0, py = 0;
      x = std::stod(xs, &px);
      y = std::stod(ys, &py);
      if (px != xs.size() || py != ys.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw bad("row '" + t + "' is not two numbers");
    }
    if (!std::isfinite(x) || !std::isfinite(y)) throw bad("row '" + t + "' has a NaN/infinite coordinate");
    cur.points.push_back({x - origin, y - origin});
  }
  if (in_block) throw bad("missing '}' at end of file");
  if (faces.empty()) throw ItemError(reason::kBadLandmarks, path, "no landmark records in the file");
  return faces;
}

void WritePtsFile(const std::string& path, const std::vector<Landmarks>& faces, int origin) {
  std::ofstream out(path);
  if (!out) throw InputError(path, "cannot write the landmark file");
  for (const Landmarks& l : faces) {
    out << "version: 1\n" << "n_points: " << l.points.size() << "\n{\n";
    for (const Point2& p : l.points) out << fmt::format("{:.3f} {:.3f}\n", p.x + origin, p.y + origin);
    out << "}\n";
  }
  if (!out) throw InputError(path, "cannot write the landmark file");
}

void CheckLandmarks(const Landmarks& l, const std::string& path) {
  int want = PointCount(l.convention);
  if (static_cast<int>(l.points.size()) != want)
    throw ItemError(reason::kBadLandmarks, path,
                    fmt::format("{} landmarks, the {} convention has {}", l.points.size(),
                                ToString(l.convention), want));
  for (size_t i = 0; i < l.points.size(); ++i)
    if (!std::isfinite(l.points[i].x) || !std::isfinite(l.points[i].y))
      throw ItemError(reason::kBadLandmarks, path, fmt::format("landmark {} has a NaN/infinite coordinate", i));
}

const std::vector<int>& Ibug68FlipPermutation() {
  static const std::vector<int> perm = [] {
    std::vector<int> p(68);
    for (int i = 0; i < 68; ++i) p[i] = i;
    auto pair = [&](int a, int b) { p[a] = b; p[b] = a; };
    for (int i = 0; i <= 7; ++i) pair(i, 16 - i);           // jaw
    for (int i = 0; i < 5; ++i) pair(17 + i, 26 - i);       // brows
    pair(31, 35); pair(32, 34);                              // nostrils
    pair(36, 45); pair(37, 44); pair(38, 43); pair(39, 42); pair(40, 47); pair(41, 46);  // eyes
    pair(48, 54); pair(49, 53); pair(50, 52); pair(55, 59); pair(56, 58);                // outer lip
    pair(60, 64); pair(61, 63); pair(65, 67);                                            // inner lip
    return p;
  }();
  return perm;
}

std::vector<Point2> CanonicalFace68() {
  std::vector<Point2> p(68);
  const double kPi = 3.14159265358979323846;
  // Jaw 0-16: lower half-ellipse from the image-left temple, under the chin, to the right.
  for (int i = 0; i <= 16; ++i) {
    double a = kPi * (1.0 - i / 16.0);  // pi .. 0
    p[i] = {0.82 * std::cos(a), -0.15 + 0.95 * std::sin(a)};
  }
  // Brows: arcs above the eyes.
  for (int i = 0; i < 5; ++i) {
    double t = i / 4.0;
    double x = -0.68 + 0.52 * t;
    p[17 + i] = {x, -0.50 - 0.08 * std::sin(kPi * t)};
    p[26 - i] = {-x, -0.50 - 0.08 * std::sin(kPi * t)};
  }
  // Nose bridge 27-30 and nostrils 31-35.
  for (int i = 0; i < 4; ++i) p[27 + i] = {0.0, -0.30 + 0.15 * i};
  for (int i = 0; i < 5; ++i) p[31 + i] = {-0.16 + 0.08 * i, 0.22 + 0.04 * (i == 2 ? 1 : (i == 1 || i == 3 ? 0.5 : 0))};
  // Eyes: six-point ellipses centred at (-/+0.38, -0.25).
  const double eye_dx[6] = {-0.16, -0.08, 0.06, 0.16, 0.06, -0.08};
  const double eye_dy[6] = {0.0, -0.055, -0.055, 0.0, 0.05, 0.05};
  for (int i = 0; i < 6; ++i) {
    p[36 + i] = {-0.38 + eye_dx[i], -0.25 + eye_dy[i]};
    // image-right eye: mirrored, order 42 (inner corner) .. 45 (outer corner)
    p[42 + i] = {0.38 - eye_dx[(3 - i + 6) % 6], -0.25 + eye_dy[(3 - i + 6) % 6]};
  }
  // Mouth: outer lip 48-59 (ellipse from left corner, clockwise over the top), inner 60-67.
  for (int i = 0; i < 12; ++i) {
    double a = kPi + 2 * kPi * i / 12.0;  // start at left corner, go over the top (y negative)
    p[48 + i] = {0.36 * std::cos(a), 0.50 + 0.14 * std::sin(a)};
  }
  for (int i = 0; i < 8; ++i) {
    double a = kPi + 2 * kPi * i / 8.0;
    p[60 + i] = {0.24 * std::cos(a), 0.50 + 0.05 * std::sin(a)};
  }
  return p;
}

}  // namespace facebatch::io
