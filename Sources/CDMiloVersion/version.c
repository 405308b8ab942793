// The one place the semantic version is written (the Makefile reads it from here for `make deb`).
// Commit and date come from `build_stamp.h`, which `make build` / `make deb` write (gitignored, rewritten only
// when its content changes, so only this file recompiles), or from `-Xcc -DDMILO_GIT_COMMIT=...`. A plain
// `swift build` has neither and reports the commit as `unknown` and the compiler's date.
#include "dmilo_version.h"

#if __has_include("build_stamp.h")
#include "build_stamp.h"
#endif

#define DMILO_SEMVER "0.1.0"

#ifndef DMILO_GIT_COMMIT
#define DMILO_GIT_COMMIT "unknown"
#endif
#ifndef DMILO_BUILD_DATE
#define DMILO_BUILD_DATE __DATE__ " " __TIME__
#endif

const char *dmilo_semver(void) { return DMILO_SEMVER; }
const char *dmilo_git_commit(void) { return DMILO_GIT_COMMIT; }
const char *dmilo_build_date(void) { return DMILO_BUILD_DATE; }
