// add-node / remove-node edit the hub config as text: comments and every
// other line survive, the [nodes] table changes by exactly one node, forms
// the editor cannot handle are refused, files are replaced atomically with
// their mode kept.
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "hub/service/node_auth.h"
#include "hub/ops/node_config_edit.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kHashA = TokenHash("token-a");
const std::string kHashB = TokenHash("token-b");

const char kExample[] = R"(# top comment
listen = "0.0.0.0:7443"   # trailing comment

[nodes]
# One line per child server.
# child-1 = "sha256:0000"
)";

TEST(NodeConfigEdit, AddKeepsEveryOtherLineAndAppendsToTheNodesSection) {
  absl::StatusOr<std::string> out = AddNodeToConfigText(kExample, "de-1", kHashA);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, std::string(kExample) + "de-1 = \"" + kHashA + "\"\n");
  absl::StatusOr<std::string> second = AddNodeToConfigText(*out, "nl_2", kHashB);
  ASSERT_TRUE(second.ok()) << second.status();
  auto nodes = NodesInConfigText(*second);
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(nodes->size(), 2u);
  EXPECT_EQ(nodes->at("de-1"), kHashA);
  EXPECT_EQ(nodes->at("nl_2"), kHashB);
  EXPECT_THAT(*second, HasSubstr("# top comment\nlisten = \"0.0.0.0:7443\"   # trailing comment\n"));
}

TEST(NodeConfigEdit, AddInsertsBeforeTheNextSectionNotAfterIt) {
  const std::string text = "[nodes]\na = \"" + kHashA + "\"\n\n[parent]\nurl = \"x\"\n";
  absl::StatusOr<std::string> out = AddNodeToConfigText(text, "b", kHashB);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "[nodes]\na = \"" + kHashA + "\"\nb = \"" + kHashB + "\"\n\n[parent]\nurl = \"x\"\n");
}

TEST(NodeConfigEdit, AddCreatesTheSectionWhenThereIsNone) {
  absl::StatusOr<std::string> out = AddNodeToConfigText("listen = \"127.0.0.1:1\"\n", "a", kHashA);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "listen = \"127.0.0.1:1\"\n\n[nodes]\na = \"" + kHashA + "\"\n");
}

TEST(NodeConfigEdit, AddRefusesExistingInvalidAndUneditableForms) {
  const std::string with_a = "[nodes]\na = \"" + kHashA + "\"\n";
  EXPECT_EQ(AddNodeToConfigText(with_a, "a", kHashB).status().code(), absl::StatusCode::kAlreadyExists);
  for (const char* bad : {"", "a.b", "a b", "ä", "x=1", "[nodes]"}) {
    EXPECT_EQ(AddNodeToConfigText(with_a, bad, kHashB).status().code(),
              absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(AddNodeToConfigText(with_a, std::string(65, 'x'), kHashB).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AddNodeToConfigText(with_a, "b", "sha256:12").status().code(),
            absl::StatusCode::kInvalidArgument);
  // An inline table: not a [nodes] section.
  const std::string inline_table = "nodes = { a = \"" + kHashA + "\" }\n";
  EXPECT_EQ(AddNodeToConfigText(inline_table, "b", kHashB).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Broken TOML is refused, not "repaired".
  EXPECT_FALSE(AddNodeToConfigText("listen = [\n", "b", kHashB).ok());
}

TEST(NodeConfigEdit, RemoveDeletesExactlyTheNodesLine) {
  const std::string text = std::string(kExample) + "a = \"" + kHashA + "\"\n\"b\" = \"" + kHashB +
                           "\"  # second\n\n[roster]\na = 1\n";
  absl::StatusOr<std::string> out = RemoveNodeFromConfigText(text, "a");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, std::string(kExample) + "\"b\" = \"" + kHashB + "\"  # second\n\n[roster]\na = 1\n");
  absl::StatusOr<std::string> both = RemoveNodeFromConfigText(*out, "b");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(*both, std::string(kExample) + "\n[roster]\na = 1\n");
  EXPECT_EQ(RemoveNodeFromConfigText(*both, "b").status().code(), absl::StatusCode::kNotFound);
  // The commented example line is not a node.
  EXPECT_EQ(RemoveNodeFromConfigText(kExample, "child-1").status().code(), absl::StatusCode::kNotFound);
}

TEST(NodeConfigEdit, ReplaceFileAtomicallyKeepsTheModeAndLeavesNoTempFile) {
  const std::string dir = hsync::testing::MakeTempDir("node_config_edit");
  const std::string path = dir + "/hub.toml";
  std::ofstream(path) << "old\n";
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(ReplaceFileAtomically(path, "new\n").ok());
  EXPECT_EQ(hsync::testing::ReadFileContents(path), "new\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
  EXPECT_FALSE(ReplaceFileAtomically(dir + "/missing-dir/hub.toml", "x").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hsync::hub
