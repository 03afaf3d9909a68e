# A private CA and raft peer certificates, with the openssl command. Sourced by
# scripts/cluster and tests/lib/lib.sh.
#
#   pki_ca DIR                 DIR/ca.pem and DIR/ca.key (EC P-256, 10 years), unless both exist
#   pki_node DIR ID [DAYS]     DIR/node<ID>.pem and DIR/node<ID>.key signed by DIR's CA, subject
#                              CN=conclave-node-<ID> (the identity raft peers check, see
#                              docs/security.md), valid DAYS days (365), unless both exist.
#                              subjectAltName DNS:conclave-node-<ID> (the name a follower
#                              checks when it forwards to this node over https), IP:127.0.0.1
#                              and every address of PKI_SAN_IPS (space-separated, e.g. the
#                              host's address) so that clients can verify https://IP:PORT;
#                              extendedKeyUsage serverAuth and clientAuth (raft dials and
#                              accepts; the API serves)
#   pki_renew DIR ID [DAYS]    a new key and certificate for node ID signed by DIR's CA, as
#                              pki_node makes them, replacing DIR/node<ID>.key and then .pem,
#                              each by a rename (a reader sees the old file or the new one;
#                              between the two renames key and certificate do not match, so do
#                              not start the node while this runs; nodes read them at start only)
#
# Keys are written with umask 077 (mode 0600). Errors go to stderr with openssl's output and
# the function returns 1.

pki_ca() {
  local dir=$1 out
  [[ -s $dir/ca.pem && -s $dir/ca.key ]] && return 0
  mkdir -p "$dir"
  if ! out=$( (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 -subj "/CN=conclave raft ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign") 2>&1); then
    echo "pki: cannot make the ca in $dir: $out" >&2
    return 1
  fi
}

pki_node() {
  local dir=$1 id=$2 days=${3:-365} out ext ip san=
  for ip in ${PKI_SAN_IPS:-}; do
    [[ $ip == 127.0.0.1 ]] || san+=",IP:$ip"
  done
  [[ -s $dir/node$id.pem && -s $dir/node$id.key ]] && return 0
  ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:conclave-node-$id,IP:127.0.0.1$san"
  if ! out=$( (umask 077 &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$dir/node$id.key" -out "$dir/node$id.csr" -subj "/CN=conclave-node-$id" &&
    openssl x509 -req -in "$dir/node$id.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
      -CAcreateserial -out "$dir/node$id.pem" -days "$days" -extfile <(echo "$ext")) 2>&1); then
    echo "pki: cannot make the certificate of node $id in $dir: $out" >&2
    return 1
  fi
  rm -f "$dir/node$id.csr"
}

pki_renew() {
  local dir=$1 id=$2 days=${3:-365} tmp
  [[ -s $dir/ca.pem && -s $dir/ca.key ]] || {
    echo "pki: no ca in $dir to renew node $id's certificate with" >&2
    return 1
  }
  tmp=$(mktemp -d "$dir/renew.XXXXXX") || return 1
  # pki_node's serial file stays in DIR: the new certificate gets the next serial.
  if ! cp -p "$dir/ca.pem" "$dir/ca.key" "$tmp/" ||
    { [[ -f $dir/ca.srl ]] && ! cp -p "$dir/ca.srl" "$tmp/"; } ||
    ! pki_node "$tmp" "$id" "$days"; then
    rm -rf "$tmp"
    return 1
  fi
  [[ ! -f $tmp/ca.srl ]] || cp -p "$tmp/ca.srl" "$dir/ca.srl"
  mv "$tmp/node$id.key" "$dir/node$id.key" && mv "$tmp/node$id.pem" "$dir/node$id.pem"
  local rc=$?
  rm -rf "$tmp"
  return $rc
}
