// The one doctest main for all unit tests (STYLE.md §10).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
