#!/bin/sh
# What compose.yaml's Kafka needs for SASL_SSL, made with openssl: a CA, the broker's
# certificate (for the host name `kafka`) in a PKCS12 keystore, the SASL/PLAIN users
# (`broker`, `keyledger`) with random passwords, and what keyledger mounts (the CA and its
# password). Run it once before `docker compose up`:
#
#   sh deploy/compose/kafka-tls/make-certs.sh [DIRECTORY]    # default: beside this script
#
# broker/ is mounted into the kafka service as /etc/kafka/secrets, keyledger/ into the
# keyledger services as /etc/keyledger/kafka; ca.key stays here. The mounted files are
# world-readable so the containers' own users can read them: these are a local set-up's
# secrets; in production use your secret store (Kubernetes Secrets, Vault, ...).
set -eu

out=${1:-$(cd "$(dirname "$0")" && pwd)}
if [ -e "$out/ca.crt" ]; then
    echo "$out already holds certificates; delete them to make new ones" >&2
    exit 1
fi
mkdir -p "$out/broker" "$out/keyledger"
cd "$out"
days=825
curve="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

# shellcheck disable=SC2086  # $curve is several options
openssl req -x509 $curve -keyout ca.key -out ca.crt -days "$days" \
    -subj "/CN=keyledger compose Kafka CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
# shellcheck disable=SC2086
openssl req -new $curve -keyout broker.key -out broker.csr -subj "/CN=kafka" 2>/dev/null
printf 'subjectAltName=DNS:kafka,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' \
    > broker.ext
openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile broker.ext -out broker.crt 2>/dev/null

store_password=$(openssl rand -hex 24)
openssl pkcs12 -export -in broker.crt -inkey broker.key -certfile ca.crt -name kafka \
    -passout "pass:$store_password" -out broker/kafka.keystore.p12
printf '%s' "$store_password" > broker/keystore-password

broker_password=$(openssl rand -hex 24)
keyledger_password=$(openssl rand -hex 24)
cat > broker/kafka_server_jaas.conf <<JAAS
KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
  username="broker"
  password="$broker_password"
  user_broker="$broker_password"
  user_keyledger="$keyledger_password";
};
JAAS
# For Kafka's own tools in the kafka container (the health check, the console consumer).
cat > broker/client.properties <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="keyledger" password="$keyledger_password";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/secrets/ca.crt
PROPERTIES
printf '%s' "$keyledger_password" > keyledger/kafka-password
cp ca.crt broker/ca.crt
cp ca.crt keyledger/ca.crt

rm -f broker.key broker.csr broker.ext broker.crt ca.srl
chmod 600 ca.key
chmod 755 broker keyledger
chmod 644 broker/* keyledger/*
echo "made $out/broker (for kafka) and $out/keyledger (for keyledger)"
