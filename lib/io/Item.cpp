#include "io/Item.h"

#include "core/Error.h"

namespace facebatch::io {

const char* ToString(LandmarkConvention c) {
  switch (c) {
    case LandmarkConvention::kIbug68: return "ibug68";
    case LandmarkConvention::kFive: return "five";
    default: return "none";
  }
}

LandmarkConvention ParseLandmarkConvention(const std::string& s) {
  if (s == "ibug68") return LandmarkConvention::kIbug68;
  if (s == "five") return LandmarkConvention::kFive;
  if (s == "none") return LandmarkConvention::kNone;
  throw Error("unknown landmark convention '" + s + "' (expected ibug68, five or none)");
}

int PointCount(LandmarkConvention c) {
  switch (c) {
    case LandmarkConvention::kIbug68: return 68;
    case LandmarkConvention::kFive: return 5;
    default: return 0;
  }
}

Landmarks FiveFrom68(const Landmarks& l68) {
  if (l68.convention != LandmarkConvention::kIbug68 || l68.points.size() != 68)
    throw Error("FiveFrom68: need 68 iBUG landmarks");
  auto mean = [&](int a, int b) {
    Point2 p;
    for (int i = a; i <= b; ++i) {
      p.x += l68.points[i].x;
      p.y += l68.points[i].y;
    }
    p.x /= (b - a + 1);
    p.y /= (b - a + 1);
    return p;
  };
  Landmarks out;
  out.convention = LandmarkConvention::kFive;
  out.origin = l68.origin;
  out.points = {mean(36, 41), mean(42, 47), l68.points[30], l68.points[48], l68.points[54]};
  return out;
}

const char* ToString(ItemStatus s) { return s == ItemStatus::kOk ? "ok" : "failed"; }

}  // namespace facebatch::io
