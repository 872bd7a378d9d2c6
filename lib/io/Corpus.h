#pragma once
// Corpus readers: turn a corpus directory into items (see Item.h).
//
// Reading is two-phase so that `index` can run the expensive part in parallel:
//   ListCandidates(): serial, cheap: the sorted list of images with their text
//                     metadata (CelebA rows, partitions, identities);
//   LoadCandidate():  per image, thread-safe: reads and validates the image and its
//                     .mat / landmark files; never throws for a bad item: it
//                     returns the item with status failed and a reason.
// Layouts (ids are "<corpus>/<path relative to root without extension>"):
//   300w-lp:  <root>/{AFW,HELEN,IBUG,LFPW}[_Flip]/<name>.jpg + <name>.mat (pt2d 2x68,
//             Pose_Para, Shape_Para, Exp_Para, Color_Para, Illum_Para, Tex_Para, roi);
//             optional <root>/landmarks/<SET>/<name>_pts.mat (pts_2d, pts_3d 68x2).
//   aflw2000: <root>/image*.jpg + .mat with pt3d_68 (3x68; rows x, y give the 2D
//             landmarks) and the same parameter fields.
//   celeba:   <root>/img_align_celeba/*.jpg + list_landmarks_align_celeba.txt (5 points);
//             or in-the-wild <root>/img_celeba/ + list_landmarks_celeba.txt + list_bbox_celeba.txt;
//             optional list_eval_partition.txt, identity_CelebA.txt.
//   folder:   any images (jpg, jpeg, png, bmp, tif, tiff, webp; recursive) + <stem>.pts
//             beside each (Landmarks.h), or --detect dlib.
#include <memory>
#include <string>
#include <vector>

#include "io/Image.h"
#include "io/Item.h"

namespace facebatch::io {

class FaceDetector;

enum class CorpusKind { k300wLp, kAflw2000, kCeleba, kFolder };
const char* ToString(CorpusKind k);            ///< "300w-lp", "aflw2000", "celeba", "folder"
/// Parses a --corpus value (not "auto"); throws UsageError.
CorpusKind ParseCorpusKind(const std::string& s);
/// Recognises a corpus layout; InputError(root, ...) when `root` is missing, not a
/// directory, or not a corpus of any known kind.
CorpusKind DetectCorpusKind(const std::string& root);

struct ReadOptions {
  int landmark_origin = 0;          ///< origin of the corpus's landmark coordinates (0 or 1)
  std::string partition = "all";    ///< CelebA: all|train|val|test
  bool detect = false;              ///< folder: detect faces with dlib when no .pts exists
  int64_t max_pixels = kDefaultMaxPixels;
  const FaceDetector* detector = nullptr;  ///< required when detect is true
};

/// One image to load, with the metadata already known from text files.
struct Candidate {
  Item item;                 ///< prefilled: id, image, corpus, subset, partition, identity, ...
  std::string metadata;      ///< absolute path of the .mat / .pts file ("" if none)
  std::string extra_metadata;  ///< 300W-LP landmarks/<SET>/<name>_pts.mat ("" if none)
};

/// Sorted by id. InputError(root, ...) for a missing root, an unrecognised layout,
/// unreadable index text files, or an empty corpus (no images).
std::vector<Candidate> ListCandidates(CorpusKind kind, const std::string& root, const ReadOptions& opts);

/// Loads one candidate: one item, or one per detected face (ids "#k" for k >= 1).
std::vector<Item> LoadCandidate(const Candidate& c, const std::string& root, const ReadOptions& opts);

/// Convenience: List + Load of every candidate, serially.
std::vector<Item> ReadCorpus(CorpusKind kind, const std::string& root, const ReadOptions& opts);

}  // namespace facebatch::io
