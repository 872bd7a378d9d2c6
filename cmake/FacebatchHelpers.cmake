# One precompiled <torch/torch.h> for the whole build. A GCC precompiled header of
# torch.h is about 540 MB; one per target made the build tree 11 GB, more than a
# CI machine's free disk. Every target that wants it reuses the one of
# facebatch_torch_pch, which is compiled with the same definitions (LibTorch's, fmt's,
# NDEBUG of the build type) and as position-independent code, as the libraries are.
# Executables are PIE by default on Debian; they compile with -fPIC so that GCC
# accepts the shared header (a -fPIE/-fPIC mismatch makes it fall back to parsing
# torch.h, which -Winvalid-pch would report).
function(facebatch_add_torch_pch)
  add_library(facebatch_torch_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/TorchPch.cpp)
  target_link_libraries(facebatch_torch_pch PRIVATE ${TORCH_LIBRARIES} fmt::fmt)
  target_precompile_headers(facebatch_torch_pch PRIVATE <torch/torch.h>)
endfunction()

function(facebatch_use_torch_pch _t)
  target_precompile_headers(${_t} REUSE_FROM facebatch_torch_pch)
  get_target_property(_type ${_t} TYPE)
  if(_type STREQUAL "EXECUTABLE")
    set_target_properties(${_t} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${_t} PRIVATE -fPIC)
  endif()
  target_compile_options(${_t} PRIVATE -Winvalid-pch)
endfunction()

# facebatch_module(NAME <m> [DEPS <modules...>] [LIBS <targets...>] [TORCH])
# Builds lib/<m>/*.cpp into the static library facebatch_<m>. DEPS are other
# facebatch modules (one-way: a module may only depend on modules built before
# it), LIBS are external targets. TORCH adds LibTorch and the shared precompiled
# header (facebatch_use_torch_pch).
function(facebatch_module)
  cmake_parse_arguments(M "TORCH" "NAME" "DEPS;LIBS" ${ARGN})
  file(GLOB _src CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  set(_t facebatch_${M_NAME})
  add_library(${_t} STATIC ${_src})
  target_include_directories(${_t} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/lib>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/generated>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/facebatch>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  foreach(_d ${M_DEPS})
    target_link_libraries(${_t} PUBLIC facebatch_${_d})
  endforeach()
  target_link_libraries(${_t} PUBLIC ${M_LIBS})
  if(M_TORCH)
    target_link_libraries(${_t} PUBLIC ${TORCH_LIBRARIES})
    facebatch_use_torch_pch(${_t})
  endif()
  target_compile_options(${_t} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  set_target_properties(${_t} PROPERTIES EXPORT_NAME ${M_NAME})
  install(TARGETS ${_t} EXPORT facebatchTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  set_property(GLOBAL APPEND PROPERTY FACEBATCH_MODULES ${_t})
endfunction()

# facebatch_tests(NAME <m> [LIBS <targets...>] [TORCH])
# Builds tests/<m>/*.cpp into test_<m> (GoogleTest) and registers every test with ctest.
function(facebatch_tests)
  cmake_parse_arguments(T "TORCH" "NAME" "LIBS" ${ARGN})
  file(GLOB _src CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  set(_t test_${T_NAME})
  add_executable(${_t} ${_src})
  target_link_libraries(${_t} PRIVATE facebatch_test_support ${T_LIBS} GTest::gtest_main)
  if(T_TORCH)
    facebatch_use_torch_pch(${_t})
  endif()
  target_compile_definitions(${_t} PRIVATE
    FACEBATCH_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data"
    FACEBATCH_SAMPLES="${PROJECT_SOURCE_DIR}/samples"
    FACEBATCH_BINARY="$<TARGET_FILE:facebatch_cli>")
  gtest_discover_tests(${_t} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS ${T_NAME} ENVIRONMENT "OPENBLAS_NUM_THREADS=1;OMP_WAIT_POLICY=PASSIVE")
endfunction()
