#pragma once
// SHA-256, incremental, for the model's weights hash in its provenance: OpenSSL's EVP digest
// (Debian libssl-dev), behind this small interface so that no OpenSSL header leaks out.
#include <cstddef>
#include <memory>
#include <string>

namespace facebatch::model {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t size);
  void Update(const std::string& s) { Update(s.data(), s.size()); }
  std::string HexDigest();  ///< finalises; lower-case hex

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

}  // namespace facebatch::model
