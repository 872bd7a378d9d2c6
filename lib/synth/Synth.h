#pragma once
// `facebatch synth`: a synthetic face corpus in a real layout (300W-LP,
// AFLW2000-3D, CelebA) plus its ground-truth file (GroundTruth.h). See docs/synth.md.
#include <cstdint>
#include <string>

#include "synth/Generator.h"  // kDefaultFacialHairProb

namespace facebatch::synth {

struct SynthOptions {
  std::string layout;          ///< --layout 300w-lp|aflw2000|celeba (required)
  std::string out;             ///< --out DIR (required): the corpus root
  int64_t count = 100;         ///< --count: faces rendered (300W-LP with --flip also writes each mirrored: 2 x count images)
  uint64_t seed = 1;           ///< --seed: same seed, same files
  int threads = 0;             ///< --threads (0: all cores)
  std::string uv = "96x112";   ///< --uv RxC: UV size of the ground-truth maps (the model's default)
  double yaw_max = -1;         ///< --yaw-max degrees (-1: layout default: 90, CelebA 30)
  double pitch_max = -1;       ///< --pitch-max degrees (-1: 30, CelebA 15)
  double roll_max = -1;        ///< --roll-max degrees (-1: 20; CelebA crops are aligned, roll is removed)
  double occluders = 0.15;     ///< --occluders: probability of an occluder per image
  double expressions = 0.5;    ///< --expressions: probability of an open mouth / closed eyes
  double facial_hair = kDefaultFacialHairProb;  ///< --facial-hair: probability of a beard / moustache / stubble per identity
  int per_identity = 1;        ///< --per-identity: images per synthetic identity (CelebA identity_CelebA.txt)
  std::string subsets = "AFW,HELEN,IBUG,LFPW";  ///< --subsets: 300W-LP subsets, faces assigned round-robin
  std::string landmark_sets = "all";  ///< --landmark-sets: 300W-LP subsets that get landmarks/<SET>/<name>_pts.mat ("all", "none" or a list)
  bool flip = true;            ///< --flip: 300W-LP: also write the mirrored <SET>_Flip copies
  std::string progress = "auto";  ///< --progress auto|bar|log|none
  std::string preview;         ///< --preview FILE.png: a grid of (up to 24) of the images written ("" = none)
  /// --from FITS.h5: re-render fitted faces (a shard or merged file of `facebatch fit` with the
  /// shape and albedo maps) under new poses, lights and backgrounds instead of random identities:
  /// the "profiling" that made 300W-LP. Face i uses the ok fit (i / per_identity) mod fits; the
  /// UV size is the file's; no expression edits (the fitted expression is kept).
  /// --count 0 with --from: every ok fit, per_identity images each.
  std::string from;
  void Check() const;          ///< throws UsageError
  int UvRows() const;
  int UvCols() const;
};

struct SynthSummary {
  std::string root;            ///< corpus root written
  std::string ground_truth;    ///< ground-truth file path
  int64_t images = 0;          ///< image files written
  double seconds = 0;
  double images_per_second = 0;
  int threads = 1;
  std::string ToString() const;
};

SynthSummary RunSynth(const SynthOptions& options);

}  // namespace facebatch::synth
