// main() of every test binary: GoogleTest plus an Environment that stops the
// shared test MariaDB (if a test started it) when the tests are done.
#include <gtest/gtest.h>

#include "tests/support/test_mariadb.h"

namespace hsync::testing {
// Defined in test_mariadb.cc: stops and removes the shared server if it runs.
void StopSharedMariaDb();
}  // namespace hsync::testing

namespace {

class SharedMariaDbEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { hsync::testing::StopSharedMariaDb(); }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new SharedMariaDbEnvironment);
  return RUN_ALL_TESTS();
}
