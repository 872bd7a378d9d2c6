#pragma once
// Manifests: the list of items of a corpus, written by `facebatch index`.
// Format (schemas/manifest.md, schemas/manifest.schema.json): JSON Lines, UTF-8.
// Line 1 is the header {"format": "facebatch-manifest", "version": 1, ...}; every
// further line is one item. Items are sorted by id. The header's `items_hash`
// ("fnv1a64:<16 hex>") is FNV-1a-64 over the bytes of all item lines, each with its
// trailing '\n': shard outputs record it to tie results to the exact manifest.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/Item.h"

namespace facebatch::io {

inline constexpr const char* kManifestFormat = "facebatch-manifest";
inline constexpr int kManifestVersion = 1;

struct ManifestHeader {
  std::string format = kManifestFormat;
  int version = kManifestVersion;
  std::string corpus;             ///< "300w-lp", "aflw2000", "celeba", "folder"
  std::string root;               ///< absolute corpus root; item image paths are relative to it
  std::string created;            ///< UTC ISO-8601 time of writing
  std::string facebatch_version;  ///< version of the writer
  std::map<std::string, int64_t> counts;  ///< "total", "ok", "failed", and "failed:<reason_code>"
  std::string items_hash;         ///< "fnv1a64:<16 lowercase hex digits>"
  std::map<std::string, std::string> options;  ///< index options used (partition, detect, ...)
};

struct Manifest {
  ManifestHeader header;
  std::vector<Item> items;

  /// Items with status ok, in manifest order.
  std::vector<const Item*> OkItems() const;
};

/// One item as its JSON line (no trailing newline). Deterministic: the same item
/// always gives the same bytes (sorted keys, shortest round-trip doubles).
std::string ItemToLine(const Item& item);
/// Parses one item line; throws InputError(path, "line N: ...") on bad content.
Item ItemFromLine(const std::string& line, const std::string& path = "<manifest>", size_t line_no = 0);

/// FNV-1a 64-bit of `bytes` continuing from `state` (start: kFnvOffset).
inline constexpr uint64_t kFnvOffset = 14695981039346656037ull;  // 0xcbf29ce484222325
/// Kept by hand (issue 17): FNV-1a 64 is part of the manifest format (`items_hash`,
/// schemas/manifest.md: "fnv1a64:..."), a non-cryptographic change detector of a few lines;
/// model weights use SHA-256 from OpenSSL (model/Sha256.h).
uint64_t Fnv1a64(const std::string& bytes, uint64_t state = kFnvOffset);
/// "fnv1a64:<hex>" over the item lines of `items` (in the given order).
std::string ItemsHash(const std::vector<Item>& items);

/// Counts by status and failure reason, as stored in the header.
std::map<std::string, int64_t> CountItems(const std::vector<Item>& items);

/// Writes the manifest atomically (temp file + rename). Fills header.counts,
/// header.items_hash, header.created, header.facebatch_version.
void WriteManifest(const std::string& path, Manifest& manifest);
/// Reads and validates a manifest: InputError naming the file for a missing file,
/// another format, an unknown version, bad lines, or an items_hash mismatch.
Manifest ReadManifest(const std::string& path);

}  // namespace facebatch::io
