#pragma once
// Landmark files and checks.
//
// The folder corpus's landmark format is the iBUG .pts format, one record per face,
// records concatenated for images with several faces:
//   version: 1
//   n_points: 68        (68 = iBUG order, 5 = left eye, right eye, nose, left mouth, right mouth)
//   {
//   x y                 (one point per line, n_points lines, decimal pixels)
//   }
// Coordinates in the file use origin `origin` (0: facebatch's convention, the centre of
// the top-left pixel is (0, 0); 1: MATLAB-style, it is (1, 1)).
#include <string>
#include <vector>

#include "io/Item.h"

namespace facebatch::io {

/// Reads all records of a .pts file. ItemError(kMissingMetadata) if absent,
/// ItemError(kBadLandmarks) naming the file and line for bad content (short rows,
/// non-numbers, NaN, point counts other than 68 or 5, missing braces).
std::vector<Landmarks> ReadPtsFile(const std::string& path, int origin);
/// Writes landmarks (facebatch coordinates) as .pts records with `origin` added.
void WritePtsFile(const std::string& path, const std::vector<Landmarks>& faces, int origin);

/// Throws ItemError(kBadLandmarks) naming `path` when a coordinate is not finite or
/// the count does not match the convention.
void CheckLandmarks(const Landmarks& l, const std::string& path);

/// Index permutation that maps iBUG-68 points to their mirror-image partners
/// (used for horizontally flipped images: flipped[i] = mirror(points[perm[i]])).
const std::vector<int>& Ibug68FlipPermutation();

/// A canonical frontal 68-point face in a unit frame: x, y in [-1, 1] (y down),
/// eye centres at y = -0.25, mouth at y = +0.5. Used by crop templates and the
/// sample generator. Designed for facebatch (not measured from any dataset).
std::vector<Point2> CanonicalFace68();

}  // namespace facebatch::io
