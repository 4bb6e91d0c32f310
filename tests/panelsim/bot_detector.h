// The panel's bot test on the User-Agent (the ua-parser "Spider" device
// family the panel relies on): such requests get 400 "invalid" before anything
// else. Python-urllib/... and Java/... are bots; curl/..., Go-http-client/1.1,
// python-requests/... and an empty UA are not.
#pragma once

#include <string_view>

namespace hsync::panelsim {

bool IsBotUserAgent(std::string_view user_agent);

}  // namespace hsync::panelsim
