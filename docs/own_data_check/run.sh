# The README's "Train on your own data" commands, small: TSV manifests with renamed columns (wav, sentence, english, key)
# built from the demo corpus (run make demo first), the offline Whisper base encoder, a few steps. Checks the route.
#   bash docs/own_data_check/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
D=${OUT:-/tmp/own_data_check}/data; R=${OUT:-/tmp/own_data_check}/runs; rm -rf $R
$PY docs/own_data_check/make_manifests.py $(ls -d .cache/demo_corpus/de-en-*/ | head -1) $D
WHISPER=$($PY -m dtw_align_hf.pretrained)
echo "WHISPER=$WHISPER"
$PY run_pretrain_mt.py --config recipes/demo/pretrain_mt.yaml --dataset manifest \
    --train_file $D/train.tsv --eval_file $D/dev.tsv --test_file $D/test.tsv --src_lang de --tgt_lang en \
    --transcript_column sentence --translation_column english --vocab_size 300 --spm_hard_vocab_limit false \
    --text_train_files $D/extra.tsv \
    --output_dir $R/pretrain_mt --license cc-by-4.0 --dataset_name my-german-lectures --max_steps 20 --save_steps 20
$PY run_finetune_st.py --config recipes/demo/finetune_st_whisper.yaml --dataset manifest \
    --train_file $D/train.tsv --eval_file $D/dev.tsv --test_file $D/test.tsv --src_lang de --tgt_lang en \
    --audio_column wav --transcript_column sentence --translation_column english --id_column key \
    --speech_encoder_name_or_path "$WHISPER" --speech_window_seconds 7 --freeze_speech_encoder \
    --mt_model_name_or_path $R/pretrain_mt --max_batch_seconds 60 --max_steps 6 --save_steps 6 \
    --output_dir $R/finetune_st --license cc-by-4.0 --dataset_name my-german-lectures
