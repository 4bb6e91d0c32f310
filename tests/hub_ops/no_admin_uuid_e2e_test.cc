// No uuid of a parent panel admin reaches a child (issue 10): on the parent an
// admin's uuid is its API key. A whole system (tests/reporter/e2e_system.h:
// panelsim parent and child over the test MariaDB, the hub and reporter
// binaries) where the parent has its owner, a sub-admin and an agent under
// it, each owning users. Every byte a reporter can receive (the raw
// WatchRoster stream, raw GetRoster and GetStatus answers over TCP with a
// node token and over the operator socket) and every column of every table of
// the child's panel database and the reporter's own schema, as text, is
// searched for each parent admin's uuid (dashed and bare hex, either case,
// and the 16 raw bytes): none may appear. The synced users belong to the
// child's own owner (added_by = 1).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/mariadb.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "tests/reporter/e2e_system.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
namespace {

constexpr char kWatchRoster[] = "/hiddify_sync.v1.SyncHub/WatchRoster";
constexpr char kGetRoster[] = "/hiddify_sync.v1.SyncHub/GetRoster";
constexpr char kGetStatus[] = "/hiddify_sync.v1.SyncHub/GetStatus";

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

void* Tag(int n) { return reinterpret_cast<void*>(static_cast<intptr_t>(n)); }

bool Await(grpc::CompletionQueue& cq, void* tag, absl::Duration timeout) {
  void* got = nullptr;
  bool ok = false;
  return cq.AsyncNext(&got, &ok, absl::ToChronoTime(absl::Now() + timeout)) ==
             grpc::CompletionQueue::GOT_EVENT &&
         got == tag && ok;
}

void Drain(grpc::CompletionQueue& cq) {
  cq.Shutdown();
  void* got = nullptr;
  bool ok = false;
  while (cq.Next(&got, &ok)) {
  }
}

// A unary call with raw bytes both ways; the answer's bytes or the error.
absl::StatusOr<std::string> RawUnary(const std::shared_ptr<grpc::Channel>& channel,
                                     const std::string& method, const std::string& token) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  auto call = stub.PrepareUnaryCall(&context, method, Buffer(""), &cq);
  call->StartCall();
  grpc::ByteBuffer answer;
  grpc::Status status;
  call->Finish(&answer, &status, Tag(1));
  void* got = nullptr;
  bool ok = false;
  cq.Next(&got, &ok);
  Drain(cq);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat(method, ": ", status.error_message()));
  }
  return Bytes(answer);
}

// The raw messages of one WatchRoster stream: until `min_messages` came and
// then no more for `quiet` (or `timeout` in all).
absl::StatusOr<std::vector<std::string>> RawWatchRoster(const std::shared_ptr<grpc::Channel>& channel,
                                                        const std::string& node_id,
                                                        const std::string& token, size_t min_messages,
                                                        absl::Duration quiet, absl::Duration timeout) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  auto call = stub.PrepareCall(&context, kWatchRoster, &cq);
  call->StartCall(Tag(1));
  if (!Await(cq, Tag(1), absl::Seconds(10))) return absl::UnavailableError("stream did not start");
  hiddify_sync::v1::WatchRosterRequest request;
  request.set_node_id(node_id);
  call->Write(Buffer(request.SerializeAsString()), Tag(2));
  if (!Await(cq, Tag(2), absl::Seconds(10))) return absl::UnavailableError("request not sent");
  call->WritesDone(Tag(3));
  if (!Await(cq, Tag(3), absl::Seconds(10))) return absl::UnavailableError("half-close failed");
  std::vector<std::string> messages;
  const absl::Time deadline = absl::Now() + timeout;
  bool read_pending = false;
  grpc::ByteBuffer message;
  while (absl::Now() < deadline) {
    if (!read_pending) {
      call->Read(&message, Tag(4));
      read_pending = true;
    }
    const absl::Duration wait = messages.size() >= min_messages ? quiet : deadline - absl::Now();
    void* got = nullptr;
    bool ok = false;
    const auto next = cq.AsyncNext(&got, &ok, absl::ToChronoTime(absl::Now() + wait));
    if (next != grpc::CompletionQueue::GOT_EVENT) break;  // quiet (or timeout)
    read_pending = false;
    if (!ok) break;  // the stream ended
    messages.push_back(Bytes(message));
  }
  context.TryCancel();
  if (read_pending) Await(cq, Tag(4), absl::Seconds(10));
  grpc::Status finish;
  call->Finish(&finish, Tag(5));
  Await(cq, Tag(5), absl::Seconds(10));
  Drain(cq);
  if (messages.size() < min_messages) {
    return absl::DeadlineExceededError(absl::StrCat("only ", messages.size(), " roster messages; ",
                                                    finish.error_message()));
  }
  return messages;
}

// Every way an admin uuid could be written: dashed and bare hex in either
// case, and its 16 bytes.
std::vector<std::string> Spellings(const std::string& uuid) {
  const std::string lower = absl::AsciiStrToLower(uuid);
  const std::string bare = absl::StrReplaceAll(lower, {{"-", ""}});
  const std::string raw =
      bare.size() == 32 && bare.find_first_not_of("0123456789abcdef") == std::string::npos
          ? absl::HexStringToBytes(bare)
          : "";
  std::vector<std::string> out = {lower, absl::AsciiStrToUpper(lower), bare,
                                  absl::AsciiStrToUpper(bare)};
  if (raw.size() == 16) out.push_back(raw);
  return out;
}

// The admin uuids found in `text` ("" when none), `where` for the message.
std::string Leaks(const std::string& text, const std::vector<std::string>& admin_uuids,
                  const std::string& where) {
  std::string found;
  for (const std::string& uuid : admin_uuids) {
    for (const std::string& spelling : Spellings(uuid)) {
      if (text.find(spelling) != std::string::npos) {
        absl::StrAppend(&found, "\n  admin uuid ", uuid, " in ", where);
        break;
      }
    }
  }
  return found;
}

absl::StatusOr<ResultSet> Query(const std::string& database, const std::string& sql) {
  auto conn = MariaDbConnection::Connect(SharedMariaDb().Options(database));
  if (!conn.ok()) return conn.status();
  return (*conn)->Query(sql);
}

// Every table of `database`, every column as text: the leaks, per cell.
std::string DatabaseLeaks(const std::string& database, const std::vector<std::string>& admin_uuids,
                          int* tables_scanned) {
  absl::StatusOr<ResultSet> tables = Query(database, "SHOW TABLES");
  if (!tables.ok()) return absl::StrCat("\n  cannot list tables of ", database, ": ", tables.status().ToString());
  std::string found;
  for (const auto& row : tables->rows) {
    const std::string table = row[0].value_or("");
    absl::StatusOr<ResultSet> rows = Query(database, absl::StrCat("SELECT * FROM `", table, "`"));
    if (!rows.ok()) {
      absl::StrAppend(&found, "\n  cannot read ", database, ".", table, ": ", rows.status().ToString());
      continue;
    }
    ++*tables_scanned;
    for (size_t r = 0; r < rows->rows.size(); ++r) {
      for (size_t c = 0; c < rows->columns.size(); ++c) {
        const std::optional<std::string>& cell = rows->rows[r][c];
        if (!cell.has_value()) continue;
        absl::StrAppend(&found, Leaks(*cell, admin_uuids,
                                      absl::StrCat(database, ".", table, ".", rows->columns[c],
                                                   " (row ", r, ")")));
      }
    }
  }
  return found;
}

TEST(NoAdminUuidReachesAChild, NotInAnyMessageNorInAnyChildTable) {
  E2eOptions options;
  options.parent_users = 4;  // owned by the parent's owner
  auto system = E2eSystem::Start(options);
  ASSERT_TRUE(system.ok()) << system.status();
  E2eSystem& sys = **system;
  const std::string parent_db = sys.parent().options().database;

  // A sub-admin of the owner and an agent under it, each with users.
  const std::string sub_admin = "5ab0a11e-0000-4000-8000-00000000a001";
  const std::string agent = "a6e17000-0000-4000-8000-00000000b002";
  {
    auto conn = MariaDbConnection::Connect(SharedMariaDb().Options(parent_db));
    ASSERT_TRUE(conn.ok()) << conn.status();
    ASSERT_TRUE((*conn)
                    ->Execute(absl::StrCat("INSERT INTO admin_user (mode, can_add_admin, max_users, "
                                           "max_active_users, parent_admin_id, uuid, name) VALUES "
                                           "('admin',1,100,100,1,'", sub_admin, "','sub-admin')"))
                    .ok());
    ASSERT_TRUE((*conn)
                    ->Execute(absl::StrCat("INSERT INTO admin_user (mode, can_add_admin, max_users, "
                                           "max_active_users, parent_admin_id, uuid, name) SELECT "
                                           "'agent',0,100,100,id,'", agent,
                                           "','agent' FROM admin_user WHERE uuid = '", sub_admin, "'"))
                    .ok());
  }
  std::vector<std::string> owned_by_sub_admins;
  for (const auto& [owner, name] : std::vector<std::pair<std::string, std::string>>{
           {sub_admin, "of-sub-admin-1"}, {sub_admin, "of-sub-admin-2"}, {agent, "of-agent"}}) {
    nlohmann::json body = {{"name", name}, {"added_by_uuid", owner}, {"usage_limit_GB", 50}};
    auto created = sys.parent().Api("POST", "admin/user/", body.dump());
    ASSERT_TRUE(created.ok()) << created.status();
    ASSERT_EQ(created->status, 200) << created->body;
    const nlohmann::json user = nlohmann::json::parse(created->body);
    ASSERT_EQ(user.at("added_by_uuid"), owner) << created->body;  // the parent API does show it
    owned_by_sub_admins.push_back(user.at("uuid").get<std::string>());
  }
  absl::StatusOr<ResultSet> admins = Query(parent_db, "SELECT uuid FROM admin_user");
  ASSERT_TRUE(admins.ok()) << admins.status();
  std::vector<std::string> admin_uuids;
  for (const auto& row : admins->rows) admin_uuids.push_back(row[0].value_or(""));
  ASSERT_GE(admin_uuids.size(), 3u);
  EXPECT_THAT(admin_uuids, ::testing::Contains(sys.parent().api_key()));  // the owner

  ASSERT_TRUE(sys.WaitRosterApplied(absl::Seconds(60)).ok());
  for (const std::string& uuid : owned_by_sub_admins) {
    EXPECT_FALSE(sys.ChildColumn(uuid, "uuid").empty()) << uuid << " not synced to the child";
  }

  // What a reporter receives, byte for byte.
  const std::shared_ptr<grpc::Channel> tcp =
      grpc::CreateChannel(sys.hub().address(), grpc::InsecureChannelCredentials());
  const std::shared_ptr<grpc::Channel> operator_socket = grpc::CreateChannel(
      absl::StrCat("unix:", sys.hub().operator_socket()), grpc::InsecureChannelCredentials());
  std::map<std::string, std::string> received;  // where -> bytes
  absl::StatusOr<std::vector<std::string>> stream =
      RawWatchRoster(tcp, options.node_id, options.token, 1, absl::Seconds(2), absl::Seconds(30));
  ASSERT_TRUE(stream.ok()) << stream.status();
  for (size_t i = 0; i < stream->size(); ++i) {
    received[absl::StrCat("WatchRoster message ", i)] = (*stream)[i];
  }
  hiddify_sync::v1::RosterUpdate first;
  ASSERT_TRUE(first.ParseFromString(stream->front()));
  EXPECT_TRUE(first.full());
  EXPECT_GE(first.upserts_size(), 7);  // 4 of the owner + 3 of the sub-admins
  for (const auto& [where, method, channel, token] :
       std::vector<std::tuple<std::string, std::string, std::shared_ptr<grpc::Channel>, std::string>>{
           {"GetRoster over TCP", kGetRoster, tcp, options.token},
           {"GetStatus over TCP", kGetStatus, tcp, options.token},
           {"GetRoster over the operator socket", kGetRoster, operator_socket, ""},
           {"GetStatus over the operator socket", kGetStatus, operator_socket, ""}}) {
    absl::StatusOr<std::string> bytes = RawUnary(channel, method, token);
    ASSERT_TRUE(bytes.ok()) << where << ": " << bytes.status();
    received[where] = *bytes;
  }
  hiddify_sync::v1::RosterSnapshot snapshot;
  ASSERT_TRUE(snapshot.ParseFromString(received["GetRoster over TCP"]));
  EXPECT_GE(snapshot.users_size(), 7);

  std::string leaks;
  for (const auto& [where, bytes] : received) absl::StrAppend(&leaks, Leaks(bytes, admin_uuids, where));
  absl::StatusOr<hiddify_sync::v1::ReporterStatusReply> reporter_status = sys.ReporterStatus();
  ASSERT_TRUE(reporter_status.ok()) << reporter_status.status();
  absl::StrAppend(&leaks, Leaks(reporter_status->SerializeAsString(), admin_uuids, "reporter status"));

  // The child's panel database and the reporter's own schema.
  int tables = 0;
  absl::StrAppend(&leaks, DatabaseLeaks(sys.child_db(), admin_uuids, &tables));
  const int panel_tables = tables;
  absl::StrAppend(&leaks, DatabaseLeaks(sys.child_db() + "_sync", admin_uuids, &tables));
  EXPECT_GE(panel_tables, 2);           // admin_user, user, ...
  EXPECT_GT(tables, panel_tables);      // and the reporter's tables
  EXPECT_EQ(leaks, "") << "parent admin uuids reached the child:" << leaks;
  // The search itself finds them where they are: in the parent's tables.
  int parent_tables = 0;
  EXPECT_THAT(DatabaseLeaks(parent_db, admin_uuids, &parent_tables),
              ::testing::AllOf(::testing::HasSubstr(sub_admin), ::testing::HasSubstr(agent),
                               ::testing::HasSubstr(sys.parent().api_key())));

  // Synced users belong to the child's own owner.
  absl::StatusOr<ResultSet> parent_users = Query(parent_db, "SELECT uuid FROM user");
  ASSERT_TRUE(parent_users.ok()) << parent_users.status();
  ASSERT_EQ(parent_users->rows.size(), 7u);
  for (const auto& row : parent_users->rows) {
    const std::string uuid = row[0].value_or("");
    EXPECT_EQ(sys.ChildColumn(uuid, "added_by"), "1") << uuid;
  }
}

}  // namespace
}  // namespace hsync::testing
