// A program outside the facebatch tree, built against the installed package.
#include <facebatch/Version.h>

#include <cstdio>

#include "io/Shard.h"

int main() {
  auto spec = facebatch::io::ShardSpec::Parse("1/4");
  std::printf("facebatch %s shard %s\n", FACEBATCH_VERSION, spec.ToString().c_str());
  return spec.index == 1 && spec.count == 4 ? 0 : 1;
}
