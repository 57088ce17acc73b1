#pragma once
/// Symbol visibility. Everything is compiled with -fvisibility=hidden; the SDK
/// and host libraries mark what others may use with GENFW_API, and plugins
/// export only their manifest entry points (GENFW_PLUGIN). Default visibility
/// on a type also keeps its RTTI one across libraries, so dynamic_cast and
/// exceptions work across the plugin boundary.
#define GENFW_API __attribute__((visibility("default")))
