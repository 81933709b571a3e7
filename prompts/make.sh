#!/usr/bin/env bash
# Makes a folder of announcement words (and the demo's messages) with espeak-ng, as prompts/en
# was made: 8 kHz mono 16-bit WAV, silence trimmed. Record real voices with the same file names
# for production; any language works.
#
# usage: prompts/make.sh [VOICE=en-us] [DIR=prompts/en]   (needs espeak-ng and sox)
set -euo pipefail
voice=${1:-en-us}; dir=${2:-$(dirname "$0")/en}
mkdir -p "$dir"
tmp=$(mktemp --suffix .wav); trap 'rm -f "$tmp"' EXIT
say() {
  espeak-ng -v "$voice" -s 150 -w "$tmp" "$2"
  sox "$tmp" -r 8000 -c 1 -b 16 -e signed-integer "$dir/$1.wav" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0 0.08
}
say you-are-caller "You are caller number"
say expected-wait "Your expected wait is about"
say minute "minute"
say minutes "minutes"
say hundred "hundred"
for n in $(seq 0 20) 30 40 50 60 70 80 90; do say "$n" "$n"; done
say holding "Thank you for holding. Your call is important to us."
say call-later "All our agents are busy. Please call again later. Goodbye."
say press-star-for-callback "To keep your place and be called back, press star."
echo "wrote $(ls "$dir" | wc -l) prompts to $dir"
