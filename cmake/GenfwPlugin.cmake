# genfw_add_plugin(NAME SOURCES a.cpp ... [TESTS test_a.cpp ...] [LIBRARIES ...])
#
# Builds a plugin library NAME.so (linking the SDK, genfw::sdk, and nothing of
# the host) into the plugin folder the runner searches,
# and, for each test source, a GoogleTest executable registered with CTest.
# The same function serves built-in plugins and plugins built outside the tree
# against the installed SDK (find_package(genfw)); there the plugin folder is
# ${CMAKE_BINARY_DIR}/plugins (pass it to `runner --plugin-path`), and
# `cmake --install` puts the plugin beside the SDK's built-ins when given the
# SDK's prefix, where the runner finds it without --plugin-path.
include(GNUInstallDirs)
# An outside project that names no build type gets an optimised plugin, as the
# framework's own are (an empty CMAKE_BUILD_TYPE compiles without any -O).
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Debug, Release, RelWithDebInfo or MinSizeRel" FORCE)
endif()
# Here, not inside the function: enable_testing() sets a variable of the calling
# scope, and an outside project then needs no CTest boilerplate of its own.
enable_testing()

function(genfw_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;TESTS;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "genfw_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE genfw::sdk ${ARG_LIBRARIES})
  if(NOT GENFW_PLUGIN_OUTPUT_DIR)
    set(GENFW_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR}/plugins)
  endif()
  set_target_properties(${name} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden
                        LIBRARY_OUTPUT_DIRECTORY ${GENFW_PLUGIN_OUTPUT_DIR})
  if(TARGET genfw_pch)  # only in the framework's own tree
    target_precompile_headers(${name} REUSE_FROM genfw_pch)
  endif()
  install(TARGETS ${name} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/genfw/plugins)
  set_property(GLOBAL APPEND PROPERTY GENFW_INSTALLED_TARGETS ${name})  # `make install` builds only these
  if(ARG_TESTS AND NOT TARGET GTest::gtest_main)
    find_package(GTest REQUIRED)
  endif()
  if(ARG_TESTS AND GENFW_TEST_GROUP)  # the framework's own tree (cmake/GenfwTestGroups.cmake)
    genfw_record_group_tests(${GENFW_TEST_GROUP} ${name} SOURCES ${ARG_TESTS} LIBRARIES ${ARG_LIBRARIES})
    return()
  endif()
  foreach(test_source ${ARG_TESTS})
    get_filename_component(test_name ${test_source} NAME_WE)
    set(test_target ${name}_${test_name})
    add_executable(${test_target} ${test_source})
    target_link_libraries(${test_target} PRIVATE genfw::testing GTest::gtest_main ${ARG_LIBRARIES})
    target_compile_definitions(${test_target} PRIVATE
      GENFW_TEST_PLUGIN_DIR="${GENFW_PLUGIN_OUTPUT_DIR}")
    if(TARGET genfw_pch)
      target_precompile_headers(${test_target} REUSE_FROM genfw_pch)
    endif()
    add_dependencies(${test_target} ${name})
    add_test(NAME ${test_target} COMMAND ${test_target})
    set_tests_properties(${test_target} PROPERTIES LABELS "plugin;${name}"
                         ENVIRONMENT "OMP_NUM_THREADS=1;GENFW_CACHE_DIR=${CMAKE_BINARY_DIR}/test-cache;GENFW_PLOTS=off")
  endforeach()
endfunction()
