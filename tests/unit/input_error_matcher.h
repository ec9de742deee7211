// Expecting a refusal: `call` must throw an InputError whose message contains `needle`.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "common/error.h"

namespace tallrec::test {

template <class Call>
void expect_input_error(Call&& call, const std::string& needle) {
  try {
    call();
    ADD_FAILURE() << "expected an InputError containing " << needle;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace tallrec::test
