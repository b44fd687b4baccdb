#!/usr/bin/env bash
# Speech recognition (English speech -> English text) and speech translation (Spanish speech -> English text) on a
# corpus synthesized with espeak-ng from the Bible corpus's splits (the recipe is in synthesize.py and
# docs/speech.md): install -> synthesize -> preprocess --audio -> train -> generate -> score (WER, BLEU).
#
#   examples/speech/run.sh                      # both tasks, 40 minutes of training each (the benchmark run)
#   TASKS=asr TRAIN=300 TEST=30 MINUTES=3 LM_MINUTES=1 examples/speech/run.sh  # a short smoke of one task
#
# Everything goes under $OUT (default runs/speech). Steps already done (a synthesized language, a DATA_DIR) are
# skipped on a second run. THREADS (default 2) CPU threads for synthesis, training and decoding. TRAIN, VALID,
# TEST (6000, 100, 300: the recipe) shrink the corpus for a smoke run. ST_FROM_ASR=0 trains speech translation from
# scratch instead of from the recognition checkpoint. PRECISION=bf16 trains with bf16 autocast: 1.6x the updates
# on a CPU with AVX-512 BF16 (same losses to 3 decimals), but many times slower without it; the default is fp32.
# LM_MINUTES (default 10; 0: none) trains an English language model on the Bible corpus's train split (the 6,000
# transcripts and the ~22k other verses of the train books; no valid or test verse) on $THREADS threads, and
# recognition then decodes a second time with it (shallow fusion, LM_WEIGHT, default 0.3: chosen on the valid clips,
# docs/benchmarks.md).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# The shared Bible corpus sits beside the main checkout (../shared) or beside a worktree's parent (../../shared).
BIBLE="${BIBLE:-$(for d in "$REPO/../shared" "$REPO/../../shared"; do [ -d "$d/data/bible-es-en" ] && echo "$d/data/bible-es-en" && break; done)}"
[ -n "$BIBLE" ] || { echo "the Bible corpus was not found; set BIBLE=/path/to/bible-es-en" >&2; exit 1; }
OUT="${OUT:-runs/speech}"
TASKS="${TASKS:-asr st}"
MINUTES="${MINUTES:-40}"
THREADS="${THREADS:-2}"
TRAIN="${TRAIN:-6000}"
VALID="${VALID:-100}"
TEST="${TEST:-300}"
PRECISION="${PRECISION:-fp32}"
LM_MINUTES="${LM_MINUTES:-10}"
LM_WEIGHT="${LM_WEIGHT:-0.3}"
mkdir -p "$OUT"

# 1. What it needs: espeak-ng (Debian package) and the speech extra.
if ! command -v espeak-ng >/dev/null; then
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
    $SUDO apt-get update && $SUDO apt-get install -y espeak-ng
fi
python -c "import kaldi_native_fbank, soundfile, jiwer" 2>/dev/null || \
    pip install -c "$REPO/constraints.txt" -e "$REPO[speech]"

lang_of() { [ "$1" = asr ] && echo en || echo es; }

# decode_and_score TASK NAME FLAGS...: the test clips of TASK into $OUT/NAME.hyp, scores into $OUT/NAME.score.
decode_and_score() {
    local task="$1" name="$2"
    shift 2
    seq2seq generate "$OUT/bin-$task" --path "$OUT/checkpoints-$task/checkpoint_best.pt" "$@" \
        --batch-size 32 --threads "$THREADS" --device cpu > "$OUT/$name.hyp"
    seq2seq score --sys "$OUT/$name.hyp" --ref "$OUT/test.ref" --metrics wer,bleu | tee "$OUT/$name.score"
    seq2seq score --sys "$OUT/$name.hyp" --ref "$OUT/test.ref" --metrics wer --lowercase --wer-remove-punct \
        | tee -a "$OUT/$name.score"
}

for task in $TASKS; do
    lang="$(lang_of "$task")"
    audio="$OUT/audio/$lang"
    # 2. The corpus: 6,000 train verses (<= 30 words), 100 valid, 300 test; seed 1; 16 kHz mono.
    [ -f "$audio/test.tsv" ] || python "$HERE/synthesize.py" --data "$BIBLE" --out "$OUT/audio" --langs "$lang" \
        --train "$TRAIN" --valid "$VALID" --test "$TEST" --workers "$THREADS"
    # Speech translation starts from the recognition model when there is one (ST_FROM_ASR=1, the default), as
    # fairseq's ST recipes start from an ASR encoder: same English vocabulary, all weights as initialization.
    init=()
    vocab=(--tokenizer unigram --vocab-size 400)
    asr_ckpt="$OUT/checkpoints-asr/checkpoint_best.pt"
    if [ "$task" = st ] && [ "${ST_FROM_ASR:-1}" = 1 ] && [ -f "$asr_ckpt" ]; then
        vocab=(--tgtdict "$OUT/bin-asr/tokenizer.en.json")
        [ -f "$OUT/checkpoints-st/checkpoint_last.pt" ] || init=(--finetune-from-model "$asr_ckpt")
    fi
    # 3. Features (80-dim fbank + utterance CMVN) and a 400-piece unigram vocabulary of the English targets (short
    # pieces: CTC and the decoder see each one often; 1,000 pieces learned more slowly in the 40-minute budget).
    [ -f "$OUT/bin-$task/meta.json" ] || seq2seq preprocess --audio -s "${lang}_speech" -t en \
        --trainpref "$audio/train" --validpref "$audio/valid" --testpref "$audio/test" \
        "${vocab[@]}" --destdir "$OUT/bin-$task"
    # 4. Train for $MINUTES minutes of wall time on $THREADS threads. The recipe is tuned for a 40-minute CPU budget
    # (docs/benchmarks.md): an auxiliary CTC loss on the encoder so that it aligns frames with tokens early, three
    # stride-2 convolutions (time / 8: ~80 encoder positions for a verse's ~55 target pieces) with 256 channels,
    # ~15-utterance batches (about 400 updates an epoch), SpecAugment (2 frequency masks of up to 27 bins, 2 time
    # masks of up to 40 frames) and dropout 0.2: with bf16 on an AVX-512 BF16 CPU (13-17 epochs in 40 minutes)
    # the model without them overfits after ~11 epochs and ends 1 point of WER worse; at fp32 without AVX-512
    # (~5 epochs) it was still underfitting. checkpoint_best.pt is picked by the decoder's nll: the CTC term of the
    # loss overfits first (docs/benchmarks.md).
    seq2seq train "$OUT/bin-$task" "${init[@]}" --arch s2t_transformer_xs \
        --model-opt conv_kernel_sizes=5,5,5 --model-opt conv_channels=256 \
        --model-opt freq_mask_n=2 --model-opt time_mask_n=2 --model-opt time_mask_t=40 \
        --encoder-layers 6 --decoder-layers 3 --dropout 0.2 --share-decoder-input-output-embed \
        --optimizer adam --adam-betas "(0.9, 0.98)" --lr 2e-3 --lr-scheduler inverse_sqrt --warmup-updates 400 \
        --criterion label_smoothed_cross_entropy_with_ctc --ctc-weight 1.0 --label-smoothing 0.1 --clip-norm 10 \
        --max-tokens 10000 --seed 1 --threads "$THREADS" --device cpu --precision "$PRECISION" \
        --best-checkpoint-metric nll_loss \
        --stop-time-hours "$(python -c "print($MINUTES / 60)")" --save-interval-updates 500 \
        --keep-interval-updates 1 --no-epoch-checkpoints --log-interval 50 --save-dir "$OUT/checkpoints-$task"
    # 5. Decode the 300 test clips and score them against the English references: WER and BLEU as written, then
    # WER lowercased without punctuation (the usual ASR convention). Recognition decodes jointly with the CTC head
    # (--ctc-weight 0.3, chosen on the valid clips: docs/benchmarks.md); translation with the decoder alone (CTC
    # prefix scores assume an output in the order of the audio).
    joint=()
    [ "$task" = asr ] && joint=(--ctc-weight 0.3)
    tail -n +2 "$audio/test.tsv" | cut -f4 > "$OUT/test.ref"
    decode_and_score "$task" "test-$task" --beam 5 "${joint[@]}"
    # 6. Recognition again with a language model of English over the same vocabulary (shallow fusion): decoder-only,
    # 4 layers of d 256, trained on the train split's English verses for $LM_MINUTES minutes (checkpoint_best.pt by
    # validation loss). With the LM, beam 10 and --ctc-weight 0.5 (chosen on the valid clips with it).
    if [ "$task" = asr ] && [ "$LM_MINUTES" != 0 ]; then
        [ -f "$OUT/bin-lm/meta.json" ] || seq2seq preprocess --only-source -s en --trainpref "$BIBLE/train" \
            --validpref "$BIBLE/valid" --srcdict "$OUT/bin-asr/tokenizer.en.json" --destdir "$OUT/bin-lm"
        # As in step 4, running it again resumes the run, and a finished one stops before its first update.
        seq2seq train "$OUT/bin-lm" --arch transformer_lm_small \
            --dropout 0.1 --optimizer adam --adam-betas "(0.9, 0.98)" --lr 1e-3 --lr-scheduler inverse_sqrt \
            --warmup-updates 400 --criterion cross_entropy --max-tokens 8192 --seed 1 --threads "$THREADS" \
            --device cpu --precision "$PRECISION" --stop-time-hours "$(python -c "print($LM_MINUTES / 60)")" \
            --no-epoch-checkpoints --log-interval 100 --save-dir "$OUT/checkpoints-lm"
        decode_and_score asr test-asr-lm --beam 10 --ctc-weight 0.5 \
            --lm-path "$OUT/checkpoints-lm/checkpoint_best.pt" --lm-weight "$LM_WEIGHT"
    fi
done
