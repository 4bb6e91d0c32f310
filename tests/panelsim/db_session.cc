#include "tests/panelsim/db_session.h"

#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hsync::panelsim {
namespace {

std::mutex g_options_mu;
MariaDbOptions* g_options = nullptr;

MariaDbOptions CurrentOptions() {
  std::lock_guard<std::mutex> lock(g_options_mu);
  return g_options != nullptr ? *g_options : MariaDbOptions{};
}

}  // namespace

void DbSession::Configure(const MariaDbOptions& options) {
  std::lock_guard<std::mutex> lock(g_options_mu);
  delete g_options;
  g_options = new MariaDbOptions(options);
}

MariaDbOptions DbSession::ConfiguredOptions() { return CurrentOptions(); }

std::string DbSession::DatabaseName() { return CurrentOptions().database; }

DbSession& DbSession::ForThisThread() {
  thread_local DbSession session;
  return session;
}

absl::Status DbSession::EnsureConnected() {
  if (conn_ != nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(conn_, MariaDbConnection::Connect(CurrentOptions()));
  return absl::OkStatus();
}

void DbSession::Drop() {
  statements_.clear();  // statements before their connection
  conn_.reset();
  in_transaction_ = false;
}

absl::StatusOr<PreparedStatement*> DbSession::Statement(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second.get();
  ASSIGN_OR_RETURN(std::unique_ptr<PreparedStatement> stmt, conn_->Prepare(sql));
  PreparedStatement* raw = stmt.get();
  statements_.emplace(std::string(sql), std::move(stmt));
  return raw;
}

absl::StatusOr<ResultSet> DbSession::Query(std::string_view sql,
                                           const std::vector<SqlValue>& params) {
  for (int attempt = 0;; ++attempt) {
    RETURN_IF_ERROR(EnsureConnected());
    absl::StatusOr<ResultSet> result;
    absl::StatusOr<PreparedStatement*> stmt = Statement(sql);
    if (!stmt.ok()) {
      result = stmt.status();
    } else {
      result = (*stmt)->Query(params);
    }
    if (result.ok() || !absl::IsUnavailable(result.status()) || in_transaction_ || attempt > 0) {
      if (!result.ok() && absl::IsUnavailable(result.status())) Drop();
      return result;
    }
    Drop();
  }
}

absl::StatusOr<uint64_t> DbSession::Execute(std::string_view sql,
                                            const std::vector<SqlValue>& params) {
  for (int attempt = 0;; ++attempt) {
    RETURN_IF_ERROR(EnsureConnected());
    absl::StatusOr<uint64_t> result;
    absl::StatusOr<PreparedStatement*> stmt = Statement(sql);
    if (!stmt.ok()) {
      result = stmt.status();
    } else {
      result = (*stmt)->Execute(params);
    }
    if (result.ok() || !absl::IsUnavailable(result.status()) || in_transaction_ || attempt > 0) {
      if (!result.ok() && absl::IsUnavailable(result.status())) Drop();
      return result;
    }
    Drop();
  }
}

absl::StatusOr<ResultSet> DbSession::QueryText(std::string_view sql) {
  for (int attempt = 0;; ++attempt) {
    RETURN_IF_ERROR(EnsureConnected());
    absl::StatusOr<ResultSet> result = conn_->Query(sql);
    if (result.ok() || !absl::IsUnavailable(result.status()) || in_transaction_ || attempt > 0) {
      if (!result.ok() && absl::IsUnavailable(result.status())) Drop();
      return result;
    }
    Drop();
  }
}

absl::StatusOr<uint64_t> DbSession::ExecuteText(std::string_view sql) {
  for (int attempt = 0;; ++attempt) {
    RETURN_IF_ERROR(EnsureConnected());
    absl::StatusOr<uint64_t> result = conn_->Execute(sql);
    if (result.ok() || !absl::IsUnavailable(result.status()) || in_transaction_ || attempt > 0) {
      if (!result.ok() && absl::IsUnavailable(result.status())) Drop();
      return result;
    }
    Drop();
  }
}

absl::StatusOr<int64_t> DbSession::LastInsertId() {
  RETURN_IF_ERROR(EnsureConnected());
  ASSIGN_OR_RETURN(ResultSet rs, conn_->Query("SELECT LAST_INSERT_ID()"));
  int64_t id = 0;
  if (rs.rows.empty() || !rs.rows[0][0].has_value() || !absl::SimpleAtoi(*rs.rows[0][0], &id)) {
    return absl::InternalError("LAST_INSERT_ID() returned nothing");
  }
  return id;
}

absl::StatusOr<std::string> DbSession::Quote(std::string_view text) {
  RETURN_IF_ERROR(EnsureConnected());
  return conn_->Quote(text);
}

absl::Status DbSession::Begin() {
  RETURN_IF_ERROR(EnsureConnected());
  absl::Status status = conn_->Begin();
  if (absl::IsUnavailable(status)) {
    Drop();
    RETURN_IF_ERROR(EnsureConnected());
    status = conn_->Begin();
  }
  if (status.ok()) in_transaction_ = true;
  return status;
}

absl::Status DbSession::Commit() {
  if (conn_ == nullptr) return absl::UnavailableError("no database connection");
  in_transaction_ = false;
  absl::Status status = conn_->Commit();
  if (absl::IsUnavailable(status)) Drop();
  return status;
}

absl::Status DbSession::Rollback() {
  if (conn_ == nullptr) return absl::OkStatus();
  in_transaction_ = false;
  absl::Status status = conn_->Rollback();
  if (absl::IsUnavailable(status)) Drop();
  return status;
}

std::string DatabaseErrorText(const absl::Status& status) {
  const std::string full(status.message());
  const std::string_view message = full;
  const size_t tail = message.rfind(" (MariaDB error ");
  if (tail == std::string_view::npos) return std::string(message);
  std::string_view number = message.substr(tail + 16);
  number = number.substr(0, number.find(')'));
  std::string_view head = message.substr(0, tail);
  const size_t sep = head.find("\": ");
  if (sep != std::string_view::npos) {
    head = head.substr(sep + 3);
  } else if (const size_t colon = head.find(": "); colon != std::string_view::npos) {
    head = head.substr(colon + 2);
  }
  int code = 0;
  absl::SimpleAtoi(std::string(number), &code);
  const std::string_view kind = (code == 1062 || code == 1452 || code == 1451 || code == 1048)
                                    ? "IntegrityError"
                                    : "OperationalError";
  return absl::StrCat("(MySQLdb.", std::string(kind), ") (", std::string(number), ", \"",
                      std::string(head), "\")");
}

}  // namespace hsync::panelsim
