#!/bin/sh
# A load command that fails at once, saying why.
echo "curl: (35) TLS connect error: wrong version number"
exit 1
