// OpenSSL's libcrypto, for the drug library's SHA-256 (EVP digest API, not deprecated in OpenSSL 3).
// Debian 12: libssl-dev (OpenSSL 3.0). Used instead of swift-crypto, whose bundled BoringSSL took about
// 40 s of a 2-core first build, a third of `make demo` on a fresh clone.
#ifndef INFUSION_CLIBCRYPTO_SHIM_H
#define INFUSION_CLIBCRYPTO_SHIM_H
#include <openssl/evp.h>
#endif
