// The panel's quick_apply_users() after an API write of a user or a usage
// task that changed a core (PANEL.md §1): broken on 12.3.0 (runs nothing);
// on panels up to 12.2 it starts `install.sh apply_users --no-gui` in the
// background.
#pragma once

#include "tests/panelsim/apply_runner.h"

namespace hsync::panelsim {

class QuickApplyUsers {
 public:
  virtual ~QuickApplyUsers() = default;
  virtual void Run() = 0;
};

// 12.3.0: does nothing.
class NoQuickApply : public QuickApplyUsers {
 public:
  void Run() override {}
};

// <= 12.2: one background apply run per call (exit 12 while one is active).
class BackgroundQuickApply : public QuickApplyUsers {
 public:
  explicit BackgroundQuickApply(ApplyRunner& runner) : runner_(runner) {}
  void Run() override { runner_.StartInBackground(); }

 private:
  ApplyRunner& runner_;
};

}  // namespace hsync::panelsim
