#include "common/mariadb.h"

#include <mysql.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace hsync {
namespace {

// Debian's abseil is built with its own absl::string_view (not std::string_view).
inline absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// Longest piece of a statement quoted in an error message.
constexpr size_t kMaxSqlInMessage = 120;
// Initial size of a result column's buffer; longer values are re-fetched.
constexpr unsigned long kMinColumnBuffer = 64;

void EnsureLibraryInitialised() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
  // Per-thread client state; released when the thread ends.
  struct ThreadState {
    ThreadState() { mysql_thread_init(); }
    ~ThreadState() { mysql_thread_end(); }
  };
  thread_local ThreadState thread_state;
}

std::string SqlForMessage(std::string_view sql) {
  if (sql.size() <= kMaxSqlInMessage) return std::string(sql);
  return absl::StrCat(Av(sql.substr(0, kMaxSqlInMessage)), "...");
}

unsigned int TimeoutSeconds(absl::Duration d) {
  const double seconds = std::ceil(absl::ToDoubleSeconds(d));
  if (seconds < 1) return 1;
  if (seconds > 86400) return 86400;
  return static_cast<unsigned int>(seconds);
}

absl::Status ConnectionError(MYSQL* mysql, std::string_view context) {
  return MariaDbError(mysql_errno(mysql), mysql_error(mysql), context);
}

absl::Status StatementError(MYSQL_STMT* stmt, std::string_view context) {
  return MariaDbError(mysql_stmt_errno(stmt), mysql_stmt_error(stmt), context);
}

// Keeps the values a MYSQL_BIND array points at alive while a statement runs.
class ParamBinder {
 public:
  explicit ParamBinder(const std::vector<SqlValue>& params)
      : binds_(params.size()), ints_(params.size()), doubles_(params.size()),
        lengths_(params.size()) {
    for (size_t i = 0; i < params.size(); ++i) {
      MYSQL_BIND& bind = binds_[i];
      std::memset(&bind, 0, sizeof(bind));
      const SqlValue& value = params[i];
      if (std::holds_alternative<std::monostate>(value)) {
        bind.buffer_type = MYSQL_TYPE_NULL;
      } else if (const int64_t* v = std::get_if<int64_t>(&value)) {
        ints_[i] = static_cast<uint64_t>(*v);
        bind.buffer_type = MYSQL_TYPE_LONGLONG;
        bind.buffer = &ints_[i];
      } else if (const uint64_t* u = std::get_if<uint64_t>(&value)) {
        ints_[i] = *u;
        bind.buffer_type = MYSQL_TYPE_LONGLONG;
        bind.buffer = &ints_[i];
        bind.is_unsigned = 1;
      } else if (const double* d = std::get_if<double>(&value)) {
        doubles_[i] = *d;
        bind.buffer_type = MYSQL_TYPE_DOUBLE;
        bind.buffer = &doubles_[i];
      } else {
        const std::string& s = std::get<std::string>(value);
        lengths_[i] = s.size();
        bind.buffer_type = MYSQL_TYPE_STRING;
        bind.buffer = const_cast<char*>(s.data());
        bind.buffer_length = s.size();
        bind.length = &lengths_[i];
      }
    }
  }
  MYSQL_BIND* binds() { return binds_.empty() ? nullptr : binds_.data(); }

 private:
  std::vector<MYSQL_BIND> binds_;
  std::vector<uint64_t> ints_;
  std::vector<double> doubles_;
  std::vector<unsigned long> lengths_;
};

// Binds `params` and executes `stmt`.
absl::Status BindAndExecute(MYSQL_STMT* stmt, const std::vector<SqlValue>& params) {
  const unsigned long expected = mysql_stmt_param_count(stmt);
  if (expected != params.size()) {
    return absl::InvalidArgumentError(absl::StrCat("prepared statement expects ", expected,
                                                   " parameters, got ", params.size()));
  }
  ParamBinder binder(params);
  if (!params.empty() && mysql_stmt_bind_param(stmt, binder.binds()) != 0) {
    return StatementError(stmt, "binding statement parameters");
  }
  if (mysql_stmt_execute(stmt) != 0) return StatementError(stmt, "executing prepared statement");
  return absl::OkStatus();
}

}  // namespace

int ResultSet::ColumnIndex(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return static_cast<int>(i);
  }
  return -1;
}

absl::Status MariaDbError(unsigned int error_number, std::string_view message,
                          std::string_view context) {
  const std::string text =
      absl::StrCat(Av(context), ": ", Av(message), " (MariaDB error ", error_number, ")");
  switch (error_number) {
    case 2001:  // CR_SOCKET_CREATE_ERROR
    case 2002:  // CR_CONNECTION_ERROR
    case 2003:  // CR_CONN_HOST_ERROR
    case 2005:  // CR_UNKNOWN_HOST
    case 2006:  // CR_SERVER_GONE_ERROR
    case 2013:  // CR_SERVER_LOST
    case 2055:  // CR_SERVER_LOST_EXTENDED
    case 1040:  // ER_CON_COUNT_ERROR (too many connections)
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1927:  // ER_CONNECTION_KILLED
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT
      return absl::UnavailableError(text);
    case 1205:  // ER_LOCK_WAIT_TIMEOUT
    case 1213:  // ER_LOCK_DEADLOCK
      return absl::AbortedError(text);
    case 1044:  // ER_DBACCESS_DENIED_ERROR
    case 1045:  // ER_ACCESS_DENIED_ERROR
      return absl::PermissionDeniedError(text);
    case 1049:  // ER_BAD_DB_ERROR
    case 1146:  // ER_NO_SUCH_TABLE
      return absl::NotFoundError(text);
    case 1062:  // ER_DUP_ENTRY
    case 1586:  // ER_DUP_ENTRY_WITH_KEY_NAME
      return absl::AlreadyExistsError(text);
    default:
      return absl::InternalError(text);
  }
}

// ---------------------------------------------------------------------------
// MariaDbConnection

absl::StatusOr<std::unique_ptr<MariaDbConnection>> MariaDbConnection::Connect(
    const MariaDbOptions& options) {
  EnsureLibraryInitialised();
  const std::string where =
      options.unix_socket.empty()
          ? absl::StrCat("host ", options.host, ":", options.port)
          : absl::StrCat("socket ", options.unix_socket);
  const std::string context =
      absl::StrCat("connecting to MariaDB at ", where, " as ", options.user,
                   options.database.empty() ? std::string()
                                            : absl::StrCat(", database ", options.database));
  MYSQL* mysql = mysql_init(nullptr);
  if (mysql == nullptr) return absl::ResourceExhaustedError(context + ": out of memory");
  const unsigned int connect_timeout = TimeoutSeconds(options.connect_timeout);
  const unsigned int read_timeout = TimeoutSeconds(options.read_timeout);
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &read_timeout);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const char* host = options.host.empty() ? nullptr : options.host.c_str();
  const char* socket = nullptr;
  if (!options.unix_socket.empty()) {
    const unsigned int protocol = MYSQL_PROTOCOL_SOCKET;
    mysql_options(mysql, MYSQL_OPT_PROTOCOL, &protocol);
    host = "localhost";
    socket = options.unix_socket.c_str();
  }
  if (mysql_real_connect(mysql, host, options.user.c_str(),
                         options.password.empty() ? nullptr : options.password.c_str(),
                         options.database.empty() ? nullptr : options.database.c_str(),
                         static_cast<unsigned int>(options.port), socket, 0) == nullptr) {
    absl::Status status = ConnectionError(mysql, context);
    mysql_close(mysql);
    return status;
  }
  if (mysql_autocommit(mysql, 1) != 0) {
    absl::Status status = ConnectionError(mysql, context);
    mysql_close(mysql);
    return status;
  }
  return std::unique_ptr<MariaDbConnection>(new MariaDbConnection(mysql, options));
}

MariaDbConnection::~MariaDbConnection() {
  if (mysql_ != nullptr) mysql_close(mysql_);
}

absl::StatusOr<uint64_t> MariaDbConnection::Execute(std::string_view sql) {
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) {
    return ConnectionError(mysql_, absl::StrCat("executing \"", SqlForMessage(sql), "\""));
  }
  const uint64_t affected = mysql_affected_rows(mysql_);
  if (mysql_field_count(mysql_) != 0) {
    // The statement returned rows nobody asked for: drain them.
    MYSQL_RES* result = mysql_store_result(mysql_);
    if (result != nullptr) mysql_free_result(result);
    return 0;
  }
  return affected;
}

absl::StatusOr<ResultSet> MariaDbConnection::Query(std::string_view sql) {
  const std::string context = absl::StrCat("querying \"", SqlForMessage(sql), "\"");
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) {
    return ConnectionError(mysql_, context);
  }
  ResultSet out;
  MYSQL_RES* result = mysql_store_result(mysql_);
  if (result == nullptr) {
    if (mysql_field_count(mysql_) != 0) return ConnectionError(mysql_, context);
    return out;  // a statement without a result set
  }
  const unsigned int column_count = mysql_num_fields(result);
  MYSQL_FIELD* fields = mysql_fetch_fields(result);
  for (unsigned int i = 0; i < column_count; ++i) out.columns.emplace_back(fields[i].name);
  out.rows.reserve(mysql_num_rows(result));
  while (MYSQL_ROW row = mysql_fetch_row(result)) {
    const unsigned long* lengths = mysql_fetch_lengths(result);
    std::vector<std::optional<std::string>>& values = out.rows.emplace_back();
    values.reserve(column_count);
    for (unsigned int i = 0; i < column_count; ++i) {
      if (row[i] == nullptr) {
        values.emplace_back(std::nullopt);
      } else {
        values.emplace_back(std::string(row[i], lengths[i]));
      }
    }
  }
  mysql_free_result(result);
  return out;
}

absl::StatusOr<std::unique_ptr<PreparedStatement>> MariaDbConnection::Prepare(
    std::string_view sql) {
  const std::string context = absl::StrCat("preparing \"", SqlForMessage(sql), "\"");
  MYSQL_STMT* stmt = mysql_stmt_init(mysql_);
  if (stmt == nullptr) return ConnectionError(mysql_, context);
  if (mysql_stmt_prepare(stmt, sql.data(), sql.size()) != 0) {
    absl::Status status = StatementError(stmt, context);
    mysql_stmt_close(stmt);
    return status;
  }
  return std::unique_ptr<PreparedStatement>(new PreparedStatement(stmt));
}

std::string MariaDbConnection::Quote(std::string_view text) {
  std::string out(text.size() * 2 + 3, '\0');
  out[0] = '\'';
  const unsigned long n =
      mysql_real_escape_string(mysql_, out.data() + 1, text.data(), text.size());
  out.resize(n + 1);
  out.push_back('\'');
  return out;
}

uint64_t MariaDbConnection::LastInsertId() const { return mysql_insert_id(mysql_); }

absl::Status MariaDbConnection::Begin() {
  absl::StatusOr<uint64_t> r = Execute("START TRANSACTION");
  return r.status();
}

absl::Status MariaDbConnection::Commit() {
  absl::StatusOr<uint64_t> r = Execute("COMMIT");
  return r.status();
}

absl::Status MariaDbConnection::Rollback() {
  absl::StatusOr<uint64_t> r = Execute("ROLLBACK");
  return r.status();
}

bool MariaDbConnection::Ping() { return mysql_ping(mysql_) == 0; }

// ---------------------------------------------------------------------------
// PreparedStatement

PreparedStatement::~PreparedStatement() {
  if (stmt_ != nullptr) mysql_stmt_close(stmt_);
}

absl::StatusOr<uint64_t> PreparedStatement::Execute(const std::vector<SqlValue>& params) {
  absl::Status status = BindAndExecute(stmt_, params);
  if (!status.ok()) return status;
  const uint64_t affected = mysql_stmt_affected_rows(stmt_);
  if (mysql_stmt_field_count(stmt_) != 0) {
    // Rows nobody asked for: discard them so the connection stays usable.
    mysql_stmt_free_result(stmt_);
    mysql_stmt_reset(stmt_);
    return 0;
  }
  return affected;
}

absl::StatusOr<ResultSet> PreparedStatement::Query(const std::vector<SqlValue>& params) {
  const my_bool update_max_length = 1;
  mysql_stmt_attr_set(stmt_, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max_length);
  absl::Status status = BindAndExecute(stmt_, params);
  if (!status.ok()) return status;
  ResultSet out;
  const unsigned int column_count = mysql_stmt_field_count(stmt_);
  if (column_count == 0) return out;
  if (mysql_stmt_store_result(stmt_) != 0) {
    return StatementError(stmt_, "fetching prepared statement result");
  }
  MYSQL_RES* metadata = mysql_stmt_result_metadata(stmt_);
  if (metadata == nullptr) {
    absl::Status error = StatementError(stmt_, "reading result metadata");
    mysql_stmt_free_result(stmt_);
    return error;
  }
  MYSQL_FIELD* fields = mysql_fetch_fields(metadata);

  // Every column is fetched as text into its own buffer.
  std::vector<MYSQL_BIND> binds(column_count);
  std::vector<std::vector<char>> buffers(column_count);
  std::vector<unsigned long> lengths(column_count);
  std::vector<my_bool> nulls(column_count);
  std::vector<my_bool> truncated(column_count);
  for (unsigned int i = 0; i < column_count; ++i) {
    out.columns.emplace_back(fields[i].name);
    buffers[i].resize(std::max<unsigned long>(fields[i].max_length, kMinColumnBuffer) + 1);
    MYSQL_BIND& bind = binds[i];
    std::memset(&bind, 0, sizeof(bind));
    bind.buffer_type = MYSQL_TYPE_STRING;
    bind.buffer = buffers[i].data();
    bind.buffer_length = buffers[i].size();
    bind.length = &lengths[i];
    bind.is_null = &nulls[i];
    bind.error = &truncated[i];
  }
  mysql_free_result(metadata);
  if (mysql_stmt_bind_result(stmt_, binds.data()) != 0) {
    absl::Status error = StatementError(stmt_, "binding result columns");
    mysql_stmt_free_result(stmt_);
    return error;
  }
  out.rows.reserve(mysql_stmt_num_rows(stmt_));
  while (true) {
    const int rc = mysql_stmt_fetch(stmt_);
    if (rc == MYSQL_NO_DATA) break;
    if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) {
      absl::Status error = StatementError(stmt_, "fetching a result row");
      mysql_stmt_free_result(stmt_);
      return error;
    }
    std::vector<std::optional<std::string>>& row = out.rows.emplace_back();
    row.reserve(column_count);
    for (unsigned int i = 0; i < column_count; ++i) {
      if (nulls[i]) {
        row.emplace_back(std::nullopt);
        continue;
      }
      if (lengths[i] < buffers[i].size()) {
        row.emplace_back(std::string(buffers[i].data(), lengths[i]));
        continue;
      }
      // Longer than the buffer: fetch the whole value of this column again.
      std::string value(lengths[i], '\0');
      unsigned long full_length = 0;
      MYSQL_BIND refetch;
      std::memset(&refetch, 0, sizeof(refetch));
      refetch.buffer_type = MYSQL_TYPE_STRING;
      refetch.buffer = value.data();
      refetch.buffer_length = value.size();
      refetch.length = &full_length;
      if (mysql_stmt_fetch_column(stmt_, &refetch, i, 0) != 0) {
        absl::Status error = StatementError(stmt_, "fetching a long column");
        mysql_stmt_free_result(stmt_);
        return error;
      }
      value.resize(std::min<unsigned long>(full_length, value.size()));
      row.emplace_back(std::move(value));
    }
  }
  mysql_stmt_free_result(stmt_);
  return out;
}

// ---------------------------------------------------------------------------
// Transaction

Transaction::Transaction(MariaDbConnection& conn) : conn_(conn), begin_status_(conn.Begin()) {
  if (!begin_status_.ok()) done_ = true;
}

Transaction::~Transaction() {
  if (!done_) conn_.Rollback().IgnoreError();
}

absl::Status Transaction::Commit() {
  if (!begin_status_.ok()) return begin_status_;
  if (done_) return absl::FailedPreconditionError("transaction already finished");
  absl::Status status = conn_.Commit();
  if (status.ok()) done_ = true;
  return status;
}

}  // namespace hsync
