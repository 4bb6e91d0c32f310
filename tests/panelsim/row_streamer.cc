#include "tests/panelsim/row_streamer.h"

#include <mysql.h>

#include "absl/strings/str_cat.h"
#include "common/mariadb.h"
#include "tests/panelsim/db_session.h"

namespace hsync::panelsim {
namespace {

bool ServerWentAway(unsigned int error) {
  return error == 2006 || error == 2013 || error == 2055 || error == 1927 || error == 4031;
}

absl::Status ErrorOf(MYSQL* mysql, std::string_view what) {
  return MariaDbError(mysql_errno(mysql), mysql_error(mysql), what);
}

}  // namespace

RowStreamer& RowStreamer::ForThisThread() {
  thread_local RowStreamer streamer;
  return streamer;
}

RowStreamer::~RowStreamer() { Disconnect(); }

void RowStreamer::Disconnect() {
  if (mysql_ != nullptr) mysql_close(mysql_);
  mysql_ = nullptr;
}

absl::Status RowStreamer::Connect() {
  if (mysql_ != nullptr) return absl::OkStatus();
  const MariaDbOptions options = DbSession::ConfiguredOptions();
  mysql_ = mysql_init(nullptr);
  if (mysql_ == nullptr) return absl::ResourceExhaustedError("mysql_init failed");
  mysql_options(mysql_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const unsigned int timeout = static_cast<unsigned int>(absl::ToInt64Seconds(options.connect_timeout));
  mysql_options(mysql_, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  if (mysql_real_connect(mysql_, options.unix_socket.empty() ? options.host.c_str() : nullptr,
                         options.user.c_str(), options.password.c_str(),
                         options.database.c_str(), static_cast<unsigned int>(options.port),
                         options.unix_socket.empty() ? nullptr : options.unix_socket.c_str(),
                         0) == nullptr) {
    absl::Status status = ErrorOf(mysql_, absl::StrCat("connecting to database ", options.database));
    Disconnect();
    return status;
  }
  return absl::OkStatus();
}

absl::Status RowStreamer::Stream(std::string_view sql,
                                 const std::function<void(const RowCells&)>& each) {
  for (int attempt = 0;; ++attempt) {
    if (absl::Status s = Connect(); !s.ok()) return s;
    if (mysql_real_query(mysql_, sql.data(), sql.size()) == 0) break;
    const unsigned int error = mysql_errno(mysql_);
    absl::Status status = ErrorOf(mysql_, "streaming a query");
    if (!ServerWentAway(error) || attempt > 0) {
      if (ServerWentAway(error)) Disconnect();
      return status;
    }
    Disconnect();
  }
  MYSQL_RES* result = mysql_use_result(mysql_);
  if (result == nullptr) {
    if (mysql_field_count(mysql_) == 0) return absl::OkStatus();
    absl::Status status = ErrorOf(mysql_, "reading a streamed result");
    Disconnect();
    return status;
  }
  const unsigned int columns = mysql_num_fields(result);
  RowCells cells(columns);
  while (MYSQL_ROW row = mysql_fetch_row(result)) {
    const unsigned long* lengths = mysql_fetch_lengths(result);
    for (unsigned int i = 0; i < columns; ++i) {
      if (row[i] == nullptr) {
        cells[i].reset();
      } else {
        cells[i] = std::string_view(row[i], lengths[i]);
      }
    }
    each(cells);
  }
  const unsigned int error = mysql_errno(mysql_);
  absl::Status status =
      error == 0 ? absl::OkStatus() : ErrorOf(mysql_, "fetching a streamed row");
  mysql_free_result(result);
  if (error != 0) Disconnect();
  return status;
}

}  // namespace hsync::panelsim
