// The invariant checks themselves: each must see the difference it names,
// or a green fault suite would prove nothing.
#include "tests/e2e/invariants.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hsync::e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using json = nlohmann::json;

const char* kA = "aaaaaaaa-0000-4000-8000-000000000001";
const char* kB = "bbbbbbbb-0000-4000-8000-000000000002";

json Parent() {
  return json::array({json{{"uuid", kA}, {"is_active", true}}, json{{"uuid", kB}, {"is_active", false}}});
}
json Cores(std::vector<std::string> xray, std::vector<std::string> singbox,
           std::vector<std::string> wireguard) {
  return json{{"core_type", "xray"}, {"xray", xray}, {"singbox", singbox}, {"wireguard", wireguard}};
}
json ChildUsers(bool a_active, bool b_active) {
  return json::array({json{{"uuid", kA}, {"is_active", a_active}}, json{{"uuid", kB}, {"is_active", b_active}}});
}

TEST(CoreDifferencesTest, AgreeingChildHasNoDifference) {
  EXPECT_THAT(CoreDifferences(Parent(), Cores({kA}, {kA}, {kA}), ChildUsers(true, false), {}), IsEmpty());
}

TEST(CoreDifferencesTest, AnActiveUserMissingFromACoreIsReported) {
  auto d = CoreDifferences(Parent(), Cores({}, {kA}, {kA}), ChildUsers(true, false), {});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_THAT(d[0], HasSubstr("not in xray on the child, active on the parent"));
}

TEST(CoreDifferencesTest, ABlockedUserStillInSingboxIsReported) {
  auto d = CoreDifferences(Parent(), Cores({kA}, {kA, kB}, {kA}), ChildUsers(true, false), {});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_THAT(d[0], HasSubstr("in singbox on the child, inactive on the parent"));
}

TEST(CoreDifferencesTest, AUserOnlyInTheChildsWireguardIsReported) {
  const char* zombie = "cccccccc-0000-4000-8000-000000000003";
  auto d = CoreDifferences(Parent(), Cores({kA}, {kA}, {kA, zombie}), ChildUsers(true, false), {});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_THAT(d[0], HasSubstr("no such user on the parent"));
}

TEST(CoreDifferencesTest, TheChildPanelsOwnIsActiveMustAgree) {
  auto d = CoreDifferences(Parent(), Cores({kA}, {kA}, {kA}), ChildUsers(false, false), {});
  EXPECT_THAT(d, ElementsAre(HasSubstr("the child panel says is_active false, the parent true")));
}

TEST(CoreDifferencesTest, ExcludedUsersAreNotCompared) {
  EXPECT_THAT(CoreDifferences(Parent(), Cores({}, {}, {}), ChildUsers(false, false), {kA}), IsEmpty());
}

TEST(CoreDifferencesTest, UuidCaseDoesNotMatter) {
  std::string upper = kA;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  EXPECT_THAT(CoreDifferences(Parent(), Cores({upper}, {kA}, {kA}), ChildUsers(true, false), {}), IsEmpty());
}

}  // namespace
}  // namespace hsync::e2e
