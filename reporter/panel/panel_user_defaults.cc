#include "reporter/panel/panel_user_defaults.h"

#include <random>

namespace hsync::reporter {

std::string PanelUsername() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string name = "user";
  for (int i = 0; i < 8; ++i) name += kAlphabet[pick(rng)];
  return name;
}

}  // namespace hsync::reporter
