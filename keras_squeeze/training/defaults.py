"""The fine-tuning defaults, one set for every caller of the one training loop.

Used by every training stage of compress(), by channel pruning's
fine-tuning and by ks.distill (see `training.trainer.fine_tune`):

- optimizer: the one given, else a fresh copy of the model's compiled one,
  else Adam at `DEFAULT_LEARNING_RATE`;
- learning rate: that optimizer's, times the caller's share
  (`learning_rate_scale`: ks.Prune 1.0, ks.Cluster 0.3, ks.QAT 0.3,
  ks.ChannelPruning 0.3, ks.distill 1.0; see `training.rate`);
- epochs: `DEFAULT_EPOCHS` to fine-tune a trained model (each compress()
  stage, prune_channels with train_data), `DEFAULT_STUDENT_EPOCHS` for
  ks.distill, which trains a student that is usually new;
- batch size: `DEFAULT_BATCH_SIZE` for in-memory arrays.
"""

DEFAULT_LEARNING_RATE = 1e-3  # Keras' own default for Adam
DEFAULT_EPOCHS = 2
DEFAULT_STUDENT_EPOCHS = 5
DEFAULT_BATCH_SIZE = 32
