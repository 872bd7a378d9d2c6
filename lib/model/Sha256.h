#pragma once
// SHA-256 (FIPS 180-4), incremental; used for model hashes in provenance.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace facebatch::model {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t size);
  void Update(const std::string& s) { Update(s.data(), s.size()); }
  std::string HexDigest();  ///< finalises; lower-case hex

 private:
  void Block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

}  // namespace facebatch::model
