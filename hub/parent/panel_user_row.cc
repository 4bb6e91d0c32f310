#include "hub/parent/panel_user_row.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/panel_time.h"

namespace hsync::hub {
namespace {

enum Column {
  kUuid,
  kName,
  kUsageLimit,
  kCurrentUsage,
  kPackageDays,
  kStartDate,
  kMode,
  kLastResetTime,
  kLastOnline,
  kEnable,
  kComment,
  kTelegramId,
  kLang,
  kEdPrivate,
  kEdPublic,
  kWgPk,
  kWgPub,
  kWgPsk,
  kColumnCount
};

constexpr const char* kColumnNames[kColumnCount] = {
    "uuid",        "name",       "usage_limit",        "current_usage",      "package_days",
    "start_date",  "mode",       "last_reset_time",    "last_online",        "enable",
    "comment",     "telegram_id", "lang",              "ed25519_private_key", "ed25519_public_key",
    "wg_pk",       "wg_pub",     "wg_psk"};

// Reads one row; the first problem is kept.
class RowReader {
 public:
  RowReader(const std::vector<std::optional<std::string>>& row) : row_(row) {}

  std::string Text(Column c) { return row_[c].value_or(std::string()); }
  const std::optional<std::string>& Cell(Column c) { return row_[c]; }

  int64_t Int(Column c, int64_t fallback) {
    if (!row_[c].has_value()) return fallback;
    int64_t v = 0;
    if (!absl::SimpleAtoi(*row_[c], &v)) Fail(c, "not an integer");
    return v;
  }
  uint64_t Bytes(Column c) {
    const int64_t v = Int(c, 0);
    if (v < 0) Fail(c, absl::StrCat("negative (", v, ")"));
    return v < 0 ? 0 : static_cast<uint64_t>(v);
  }
  std::optional<absl::CivilDay> Date(Column c) {
    if (!row_[c].has_value()) return std::nullopt;
    absl::StatusOr<absl::CivilDay> day = ParsePanelDate(*row_[c]);
    if (!day.ok()) {
      Fail(c, absl::StrCat("not a date: ", day.status().message()));
      return std::nullopt;
    }
    return *day;
  }
  void Fail(Column c, std::string reason) {
    if (failed_) return;
    failed_ = true;
    field_ = kColumnNames[c];
    reason_ = std::move(reason);
  }
  bool failed() const { return failed_; }
  const char* field() const { return field_; }
  const std::string& reason() const { return reason_; }

 private:
  const std::vector<std::optional<std::string>>& row_;
  bool failed_ = false;
  const char* field_ = "";
  std::string reason_;
};

}  // namespace

const std::string& PanelUserColumns() {
  static const std::string* columns = [] {
    auto* s = new std::string;
    for (int c = 0; c < kColumnCount; ++c) {
      if (c > 0) s->append(", ");
      absl::StrAppend(s, "`", kColumnNames[c], "`");
    }
    return s;
  }();
  return *columns;
}

bool PanelIsActive(bool enable, int64_t usage_limit, int64_t current_usage, int64_t package_days,
                   const std::optional<absl::CivilDay>& start_date, absl::CivilDay today) {
  if (!enable) return false;
  if (usage_limit < current_usage) return false;
  int64_t remaining = start_date.has_value() ? package_days - (today - *start_date) : package_days;
  remaining = std::min<int64_t>(remaining, 10000);
  return remaining >= 0;
}

absl::StatusOr<hiddify_sync::v1::User> PanelUserFromRow(
    const std::vector<std::optional<std::string>>& row, absl::CivilDay today,
    const std::string& default_lang, std::string* field) {
  if (row.size() != kColumnCount) {
    *field = "";
    return absl::InternalError(absl::StrCat("user row has ", row.size(), " columns, expected ",
                                            kColumnCount));
  }
  RowReader r(row);
  hiddify_sync::v1::User u;
  u.set_uuid(r.Text(kUuid));
  if (u.uuid().empty()) r.Fail(kUuid, "empty");
  u.set_name(r.Text(kName));
  const int64_t limit = r.Int(kUsageLimit, 0);
  const int64_t usage = r.Int(kCurrentUsage, 0);
  u.set_usage_limit_bytes(r.Bytes(kUsageLimit));
  u.set_current_usage_bytes(r.Bytes(kCurrentUsage));
  // NULL package_days: the panel's remaining_days is -1.
  const bool has_days = r.Cell(kPackageDays).has_value();
  const int64_t days = r.Int(kPackageDays, 0);
  u.set_package_days(static_cast<int32_t>(days));
  const std::optional<absl::CivilDay> start = r.Date(kStartDate);
  if (start.has_value()) u.set_start_date(FormatPanelDate(*start));
  u.set_mode(r.Text(kMode));
  const std::optional<absl::CivilDay> reset = r.Date(kLastResetTime);
  if (reset.has_value()) u.set_last_reset_time(absl::StrCat(FormatPanelDate(*reset), " 00:00:00"));
  const std::string online = r.Cell(kLastOnline).value_or(std::string(kNeverOnline));
  if (!ParsePanelDateTime(online).ok()) r.Fail(kLastOnline, "not a date and time");
  u.set_last_online(online);
  const bool enable = r.Int(kEnable, 0) != 0;
  u.set_enable(enable);
  u.set_is_active(has_days && PanelIsActive(enable, limit, usage, days, start, today));
  u.set_comment(r.Text(kComment));
  if (r.Cell(kTelegramId).has_value()) u.set_telegram_id(r.Int(kTelegramId, 0));
  const std::optional<std::string>& lang = r.Cell(kLang);
  u.set_lang(lang.has_value() && !lang->empty() ? *lang : default_lang);
  u.set_ed25519_private_key(r.Text(kEdPrivate));
  u.set_ed25519_public_key(r.Text(kEdPublic));
  u.set_wg_pk(r.Text(kWgPk));
  u.set_wg_pub(r.Text(kWgPub));
  u.set_wg_psk(r.Text(kWgPsk));
  if (r.failed()) {
    *field = r.field();
    return absl::DataLossError(absl::StrCat("user ", u.uuid().empty() ? "?" : u.uuid(), ": ",
                                            r.field(), ": ", r.reason()));
  }
  field->clear();
  return u;
}

}  // namespace hsync::hub
