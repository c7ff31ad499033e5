// Program version and the git commit it was configured from (recorded in every results file).
#pragma once

namespace cnnpar {
const char* program_version();
const char* git_commit();
}  // namespace cnnpar
