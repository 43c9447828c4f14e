#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  // A sweep runs its points in child processes of the executable IPCSIM_BINARY names, else of this
  // one: here that would be the test binary, which would run every test again in each point.
  ::setenv("IPCSIM_BINARY", IPCSIM_BINARY, 1);
  return doctest::Context(argc, argv).run();
}
