#pragma once
/// Symbol visibility. Everything is compiled with -fvisibility=hidden; the host
/// library marks what plugins may use with GENFW_API, and plugins export only
/// their manifest entry points (GENFW_PLUGIN).
#include <boost/config.hpp>

#if defined(GENFW_BUILDING_HOST)
#define GENFW_API BOOST_SYMBOL_EXPORT
#else
#define GENFW_API BOOST_SYMBOL_VISIBLE
#endif
