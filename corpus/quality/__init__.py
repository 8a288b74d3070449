"""Quality classifiers and the loop that makes them: apply (fasttext, embed, models, apply), train and evaluate
(train), publish through the gate (gate), labels from LLMs (annotate), uncertainty sampling (active) and weak
labels from a finished run (weak); their commands (commands). docs/ARCHITECTURE.md, README "Quality classifiers"."""
