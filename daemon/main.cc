#include "daemon/cli.h"

int main(int argc, char** argv) { return dirsync::cli::run(argc, argv); }
