// Where a test finds the binaries and files it depends on (Bazel's `data`):
// under $TEST_SRCDIR, in the omd workspace.
//
//   const std::string resource = Runfile("testing/test_resource");
#ifndef OMD_TESTING_RUNFILES_H_
#define OMD_TESTING_RUNFILES_H_

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace omd::testing {

inline std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/omd/", path);
}

// The test resource program (testing/test_resource_main.cc).
inline std::string TestResourcePath() { return Runfile("testing/test_resource"); }

}  // namespace omd::testing

#endif  // OMD_TESTING_RUNFILES_H_
