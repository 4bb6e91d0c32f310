// Node authentication: token hashes, Bearer parsing, unknown/wrong tokens,
// reload, loopback peers.
#include "hub/service/node_auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hsync::hub {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

TEST(TokenHashTest, IsSha256HexWithPrefix) {
  // sha256("abc"), a published test vector.
  EXPECT_EQ(TokenHash("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(IsWellFormedTokenHash(TokenHash("anything")));
  EXPECT_TRUE(IsWellFormedTokenHash(
      "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
  EXPECT_FALSE(IsWellFormedTokenHash("sha256:ba78"));
  EXPECT_FALSE(IsWellFormedTokenHash(
      "md5:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  EXPECT_FALSE(IsWellFormedTokenHash(
      "sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

TEST(NodeIdTest, AllowsSimpleNames) {
  EXPECT_TRUE(IsValidNodeId("de-1"));
  EXPECT_TRUE(IsValidNodeId("child_2-example"));
  EXPECT_FALSE(IsValidNodeId("child.example"));  // a dot would split the TOML key
  EXPECT_FALSE(IsValidNodeId(""));
  EXPECT_FALSE(IsValidNodeId("has space"));
  EXPECT_FALSE(IsValidNodeId(std::string(65, 'a')));
}

class NodeAuthenticatorTest : public ::testing::Test {
 protected:
  NodeAuthenticator auth_{{{"de-1", TokenHash("token-de")}, {"fr-2", TokenHash("token-fr")}}};
};

TEST_F(NodeAuthenticatorTest, BearerTokenMapsToItsNode) {
  EXPECT_EQ(auth_.Authenticate("Bearer token-de").value(), "de-1");
  EXPECT_EQ(auth_.Authenticate("Bearer token-fr").value(), "fr-2");
  EXPECT_EQ(auth_.Authenticate("bearer token-fr").value(), "fr-2");  // scheme is case-insensitive
  EXPECT_EQ(auth_.Authenticate("Bearer   token-fr ").value(), "fr-2");
}

TEST_F(NodeAuthenticatorTest, MissingMalformedOrUnknownTokensAreUnauthenticated) {
  for (const char* header : {"", "token-de", "Basic token-de", "Bearer ", "Bearer token-xx",
                             "Bearer token-de2", "Bearer Token-de"}) {
    absl::StatusOr<std::string> node = auth_.Authenticate(header);
    ASSERT_FALSE(node.ok()) << header;
    EXPECT_EQ(node.status().code(), absl::StatusCode::kUnauthenticated) << header;
    EXPECT_THAT(std::string(node.status().message()), Not(HasSubstr("token-")));
  }
}

TEST_F(NodeAuthenticatorTest, ReplaceRevokesAndAddsNodes) {
  auth_.Replace({{"fr-2", TokenHash("token-fr")}, {"nl-3", TokenHash("token-nl")}});
  EXPECT_FALSE(auth_.Authenticate("Bearer token-de").ok());
  EXPECT_EQ(auth_.Authenticate("Bearer token-nl").value(), "nl-3");
  EXPECT_THAT(auth_.NodeIds(), UnorderedElementsAre("fr-2", "nl-3"));
}

TEST_F(NodeAuthenticatorTest, MalformedHashesNeverMatch) {
  NodeAuthenticator auth({{"x", "sha256:"}, {"y", "plain-token"}});
  EXPECT_FALSE(auth.Authenticate("Bearer plain-token").ok());
  EXPECT_FALSE(auth.Authenticate("Bearer ").ok());
}

TEST(LoopbackPeerTest, RecognisesThisHost) {
  EXPECT_TRUE(IsLoopbackPeer("ipv4:127.0.0.1:41234"));
  EXPECT_TRUE(IsLoopbackPeer("ipv4:127.8.9.10:1"));
  EXPECT_TRUE(IsLoopbackPeer("ipv6:[::1]:41234"));
  EXPECT_TRUE(IsLoopbackPeer("ipv6:[::ffff:127.0.0.1]:41234"));
  EXPECT_TRUE(IsLoopbackPeer("unix:/run/hub.sock"));
  EXPECT_FALSE(IsLoopbackPeer("ipv4:10.1.2.3:41234"));
  EXPECT_FALSE(IsLoopbackPeer("ipv4:128.0.0.1:41234"));
  EXPECT_FALSE(IsLoopbackPeer("ipv6:[2001:db8::1]:41234"));
  EXPECT_FALSE(IsLoopbackPeer("ipv6:[::ffff:10.0.0.1]:1"));
  EXPECT_FALSE(IsLoopbackPeer(""));
  EXPECT_FALSE(IsLoopbackPeer("ipv4:127.0.0.1"));
}

TEST(UnixSocketPeerTest, OnlyUnixSocketPeersNotLoopbackTcp) {
  EXPECT_TRUE(IsUnixSocketPeer("unix:"));
  EXPECT_TRUE(IsUnixSocketPeer("unix:/run/hiddify-sync/hub.sock"));
  EXPECT_FALSE(IsUnixSocketPeer("ipv4:127.0.0.1:41234"));
  EXPECT_FALSE(IsUnixSocketPeer("ipv6:[::1]:41234"));
  EXPECT_FALSE(IsUnixSocketPeer("unix-abstract:hub"));
  EXPECT_FALSE(IsUnixSocketPeer(""));
}

}  // namespace
}  // namespace hsync::hub
