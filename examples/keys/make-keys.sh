#!/usr/bin/env bash
# Makes a new set of keys like the examples' test keys, with openssl:
#   examples/keys/make-keys.sh OUT_DIR [DEVICE_NAME]
# OUT_DIR receives onboard-ca, onboard, device-ca and device (.pem certificates, .key PKCS#8
# private keys), all ECDSA P-256, valid for ten years. Put `base64 -w0 FILE.pem` of a certificate
# in an object's `spec.certificate` (or a Device's `spec.onboard`).
set -euo pipefail
out=${1:?usage: make-keys.sh OUT_DIR [DEVICE_NAME]}
device=${2:-eve-device.example}
mkdir -p "$out"
cd "$out"
days=3650

# A self-signed certificate authority: ca NAME "COMMON NAME".
ca() {
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# A leaf certificate signed by a CA: leaf NAME "COMMON NAME" CA KEY_USAGE EXTENDED_KEY_USAGE.
leaf() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,%s\nextendedKeyUsage=%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' \
    "$4" "$5" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days "$days" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext" "$3.srl"
}

ca onboard-ca "Example Onboarding CA"
leaf onboard "onboard-$(openssl rand -hex 4)" onboard-ca digitalSignature clientAuth
ca device-ca "Example Device CA"
leaf device "$device" device-ca digitalSignature,keyAgreement clientAuth,serverAuth
chmod 600 ./*.key
echo "made onboard-ca, onboard, device-ca and device (.pem, .key) in $PWD"
