#pragma once
// A named, per-image record of the evaluated terms of an objective.
#include <ATen/Tensor.h>

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace facebatch::fit {

struct LossResult;

/// The evaluated terms of an objective: per term its name, weight and
/// unweighted per-image values [B]; total = sum of weight * value per image.
class LossTerms {
 public:
  struct Term {
    std::string name;
    double weight = 1.0;
    at::Tensor per_image;  ///< [B], unweighted
  };

  /// Adds a term (names must be unique; all terms must have the same B).
  void Add(const std::string& name, double weight, const at::Tensor& per_image);
  void Add(const std::string& name, double weight, const LossResult& value);

  bool empty() const { return terms_.empty(); }
  int64_t batch_size() const;
  const std::vector<Term>& terms() const { return terms_; }
  const Term* Find(const std::string& name) const;
  /// Weighted total per image [B] (throws if empty).
  at::Tensor Total() const;
  /// Total().mean(): the scalar to call backward() on.
  at::Tensor Mean() const;
  /// Unweighted value of every term for one image, plus "total" (weighted).
  std::map<std::string, double> Values(int64_t image) const;
  /// Batch means of every unweighted term, plus "total".
  std::map<std::string, double> Means() const;
  /// One line: "total 0.123 = photometric 0.05 x1 + landmark 0.0007 x100 ..."
  /// (batch means).
  std::string ToString() const;
  /// A copy without autograd history (for logging and snapshots).
  LossTerms Detached() const;

 private:
  std::vector<Term> terms_;
};

std::ostream& operator<<(std::ostream& os, const LossTerms& terms);

}  // namespace facebatch::fit
