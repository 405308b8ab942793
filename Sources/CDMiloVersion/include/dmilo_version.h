// Build identity of the dmilo binaries: semantic version, git commit and build date, fixed at compile time.
#ifndef DMILO_VERSION_H
#define DMILO_VERSION_H

const char *dmilo_semver(void);
const char *dmilo_git_commit(void);
const char *dmilo_build_date(void);

#endif
