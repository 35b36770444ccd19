"""The one gateway to Label Studio: every label-studio-sdk call, and the queue written back."""
