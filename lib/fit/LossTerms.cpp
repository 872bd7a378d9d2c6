#include "fit/LossTerms.h"

#include "core/Error.h"
#include "fit/Losses.h"

#include <torch/torch.h>

#include <fmt/format.h>

#include <ostream>

namespace facebatch::fit {

void LossTerms::Add(const std::string& name, double weight, const LossResult& value) {
  Add(name, weight, value.per_image);
}

void LossTerms::Add(const std::string& name, double weight, const at::Tensor& per_image) {
  if (Find(name) != nullptr) throw Error("LossTerms: term '" + name + "' added twice");
  if (!per_image.defined() || per_image.dim() != 1) {
    throw Error("LossTerms: term '" + name + "' must be a per-image tensor [B]");
  }
  if (!terms_.empty() && per_image.size(0) != batch_size()) {
    throw Error(fmt::format("LossTerms: term '{}' has {} images, the others {}", name,
                            per_image.size(0), batch_size()));
  }
  terms_.push_back({name, weight, per_image});
}

int64_t LossTerms::batch_size() const { return terms_.empty() ? 0 : terms_.front().per_image.size(0); }

const LossTerms::Term* LossTerms::Find(const std::string& name) const {
  for (const auto& t : terms_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

at::Tensor LossTerms::Total() const {
  if (terms_.empty()) throw Error("LossTerms: no term");
  at::Tensor total;
  for (const auto& t : terms_) {
    auto w = t.per_image * t.weight;
    total = total.defined() ? total + w : w;
  }
  return total;
}

at::Tensor LossTerms::Mean() const { return Total().mean(); }

std::map<std::string, double> LossTerms::Values(int64_t image) const {
  std::map<std::string, double> out;
  if (terms_.empty()) return out;
  for (const auto& t : terms_) out[t.name] = t.per_image[image].item<double>();
  out["total"] = Total()[image].item<double>();
  return out;
}

std::map<std::string, double> LossTerms::Means() const {
  std::map<std::string, double> out;
  if (terms_.empty()) return out;
  for (const auto& t : terms_) out[t.name] = t.per_image.mean().item<double>();
  out["total"] = Mean().item<double>();
  return out;
}

std::string LossTerms::ToString() const {
  if (terms_.empty()) return "(no loss terms)";
  torch::NoGradGuard no_grad;
  std::string s = fmt::format("total {:.6g} =", Mean().item<double>());
  bool first = true;
  for (const auto& t : terms_) {
    s += fmt::format("{} {} {:.6g} x{:g}", first ? "" : " +", t.name, t.per_image.mean().item<double>(),
                     t.weight);
    first = false;
  }
  return s;
}

LossTerms LossTerms::Detached() const {
  LossTerms out;
  for (const auto& t : terms_) out.terms_.push_back({t.name, t.weight, t.per_image.detach().clone()});
  return out;
}

std::ostream& operator<<(std::ostream& os, const LossTerms& terms) { return os << terms.ToString(); }

}  // namespace facebatch::fit
