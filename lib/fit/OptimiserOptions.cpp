#include "fit/Optimiser.h"

#include <boost/program_options.hpp>

namespace facebatch::fit {

namespace po = boost::program_options;

void AddMinimiseOptions(po::options_description& desc, MinimiseOptions& o, const std::string& prefix) {
  auto name = [&](const char* field) { return prefix + "." + field; };
  auto add = [&](const char* field, auto* target, const char* help) {
    desc.add_options()(name(field).c_str(), po::value(target)->default_value(*target), help);
  };
  add("iterations", &o.max_iterations, "optimiser iterations per batch (0: no optimisation)");
  OptimiserOptions* opt = &o.optimiser;
  desc.add_options()(name("method").c_str(),
                     po::value<std::string>()
                         ->default_value(OptimiserMethodName(opt->method))
                         ->notifier([opt](const std::string& s) { opt->method = ParseOptimiserMethod(s); }),
                     "adam | sgd");
  add("step_size", &o.optimiser.step_size, "initial step size (learning rate) of every image");
  add("beta1", &o.optimiser.beta1, "Adam first-moment decay");
  add("beta2", &o.optimiser.beta2, "Adam second-moment decay");
  add("epsilon", &o.optimiser.epsilon, "Adam denominator guard");
  add("momentum", &o.optimiser.momentum, "SGD momentum");
  add("relative_tolerance", &o.convergence.relative_tolerance,
      "converged when the relative loss change stays below this ...");
  add("patience", &o.convergence.patience, "... for this many iterations");
  add("rise_tolerance", &o.convergence.rise_tolerance,
      "diverging when the loss rises above best + this x max(best, progress) ...");
  add("rise_patience", &o.convergence.rise_patience, "... for this many iterations (or is NaN/inf)");
  add("step_reduction", &o.step_reduction, "on divergence: restore the best state and scale the step by this");
  add("max_step_reductions", &o.max_step_reductions, "then give up on the image (status diverged)");
}

}  // namespace facebatch::fit
