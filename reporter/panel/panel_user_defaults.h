// What the panel's insert hook (hiddifypanel models/user.py on_user_insert)
// gives a user created through the panel and a row inserted by SQL would
// lack; the roster applier adds it to the users it creates. (The ed25519 and
// WireGuard keys the hook also generates come from the parent instead.)
#pragma once

#include <string>

namespace hsync::reporter {

// A fresh login name as the panel generates one: "user" + 8 random
// lower-case letters and digits.
std::string PanelUsername();

}  // namespace hsync::reporter
