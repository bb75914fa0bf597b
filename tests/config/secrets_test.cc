// resolve_secret: the reference kinds, what is read, and what errors say.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace dirsync::config {
namespace {

using testing::ScopedEnv;
using testing::TempDir;

// The message of the runtime_error resolve_secret throws ("" if it does not).
std::string error_of(const std::string& text) {
  try {
    resolve_secret(text);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error for " << text;
  return "";
}

TEST(ResolveSecret, ReadsAnEnvironmentVariableAndDescribesTheReference) {
  ScopedEnv env("DIRSYNC_TEST_TOKEN", "tok-1");
  const core::Secret s = resolve_secret("${env:DIRSYNC_TEST_TOKEN}");
  EXPECT_EQ(s.reveal(), "tok-1");
  EXPECT_EQ(s.describe(), "${env:DIRSYNC_TEST_TOKEN}");
}

TEST(ResolveSecret, RejectsAnUnsetOrEmptyEnvironmentVariable) {
  ScopedEnv unset("DIRSYNC_TEST_UNSET", std::nullopt);
  EXPECT_EQ(error_of("${env:DIRSYNC_TEST_UNSET}"),
            "cannot resolve ${env:DIRSYNC_TEST_UNSET}: environment variable DIRSYNC_TEST_UNSET is not set; "
            "expected DIRSYNC_TEST_UNSET in dirsync's environment");
  ScopedEnv empty("DIRSYNC_TEST_EMPTY", "");
  EXPECT_EQ(error_of("${env:DIRSYNC_TEST_EMPTY}"),
            "cannot resolve ${env:DIRSYNC_TEST_EMPTY}: environment variable DIRSYNC_TEST_EMPTY is empty; "
            "expected the secret in it");
}

TEST(ResolveSecret, FileDropsExactlyOneTrailingNewline) {
  TempDir dir;
  const auto one = dir.write("one", "abc\n");
  const auto two = dir.write("two", "abc\n\n");
  const auto crlf = dir.write("crlf", "abc\r\n");
  const auto none = dir.write("none", "abc");
  const auto inner = dir.write("inner", "a\nb\n");
  EXPECT_EQ(resolve_secret("${file:" + one.string() + "}").reveal(), "abc");
  EXPECT_EQ(resolve_secret("${file:" + two.string() + "}").reveal(), "abc\n");
  EXPECT_EQ(resolve_secret("${file:" + crlf.string() + "}").reveal(), "abc");
  EXPECT_EQ(resolve_secret("${file:" + none.string() + "}").reveal(), "abc");
  EXPECT_EQ(resolve_secret("${file:" + inner.string() + "}").reveal(), "a\nb");
  EXPECT_EQ(resolve_secret("${file:" + one.string() + "}").describe(), "${file:" + one.string() + "}");
}

TEST(ResolveSecret, RejectsAnUnreadableFileNamingThePathAndTheReason) {
  TempDir dir;
  const std::string missing = (dir.path() / "nope").string();
  EXPECT_EQ(error_of("${file:" + missing + "}"),
            "cannot resolve ${file:" + missing + "}: cannot read " + missing +
                ": No such file or directory; expected a readable file");
  EXPECT_EQ(error_of("${file:" + dir.path().string() + "}"),
            "cannot resolve ${file:" + dir.path().string() + "}: cannot read " + dir.path().string() +
                ": Is a directory; expected a readable file");
}

TEST(ResolveSecret, RejectsAnEmptyFile) {
  TempDir dir;
  const auto empty = dir.write("empty", "\n");
  EXPECT_EQ(error_of("${file:" + empty.string() + "}"),
            "cannot resolve ${file:" + empty.string() + "}: " + empty.string() + " is empty; expected the secret in it");
}

TEST(ResolveSecret, ReadsACredentialFromTheCredentialsDirectory) {
  TempDir dir;
  dir.write("perscom-token", "cred-value\n");
  ScopedEnv creds("CREDENTIALS_DIRECTORY", dir.path().string());
  const core::Secret s = resolve_secret("${cred:perscom-token}");
  EXPECT_EQ(s.reveal(), "cred-value");
  EXPECT_EQ(s.describe(), "${cred:perscom-token}");
  EXPECT_EQ(error_of("${cred:../etc/passwd}"),
            "cannot resolve ${cred:../etc/passwd}: '../etc/passwd' is not a credential name; expected a plain file name");
}

TEST(ResolveSecret, RejectsACredentialWithoutCredentialsDirectory) {
  ScopedEnv creds("CREDENTIALS_DIRECTORY", std::nullopt);
  EXPECT_EQ(error_of("${cred:perscom-token}"),
            "cannot resolve ${cred:perscom-token}: CREDENTIALS_DIRECTORY is not set; "
            "expected dirsync to run as a systemd service with LoadCredential=perscom-token");
}

TEST(ResolveSecret, TreatsAnythingElseAsALiteral) {
  for (const char* text : {"plain-token", "${", "${}", "$env:X", "{env:X}", "a ${env:X}", "${a b:c}"}) {
    const core::Secret s = resolve_secret(text);
    EXPECT_EQ(s.reveal(), text);
    EXPECT_EQ(s.describe(), "(literal)");
  }
}

TEST(ResolveSecret, RejectsReferencesThatLookMistyped) {
  // Sending "${PERSCOM_TOKEN}" as a bearer token would fail late and obscurely.
  EXPECT_EQ(error_of("${PERSCOM_TOKEN}"),
            "cannot resolve a secret: '${PERSCOM_TOKEN}' is not a reference dirsync knows; "
            "expected ${env:PERSCOM_TOKEN}");
  EXPECT_EQ(error_of("${vault:kv/perscom}"),
            "cannot resolve a secret: unknown kind of reference 'vault'; "
            "expected ${env:NAME}, ${file:PATH} or ${cred:NAME}");
}

}  // namespace
}  // namespace dirsync::config
