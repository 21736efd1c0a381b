# SPDX-License-Identifier: MIT
# Remove every file listed in install_manifest.txt (written by the last
# `cmake --install` / `make install` of this build tree).
if(NOT EXISTS "${CMAKE_CURRENT_BINARY_DIR}/install_manifest.txt")
  message(FATAL_ERROR "nothing to uninstall: no install_manifest.txt (run make install first)")
endif()
file(STRINGS "${CMAKE_CURRENT_BINARY_DIR}/install_manifest.txt" files)
foreach(f ${files})
  if(EXISTS "$ENV{DESTDIR}${f}" OR IS_SYMLINK "$ENV{DESTDIR}${f}")
    message(STATUS "removing $ENV{DESTDIR}${f}")
    file(REMOVE "$ENV{DESTDIR}${f}")
  endif()
endforeach()
