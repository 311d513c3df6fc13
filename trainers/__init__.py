"""execrl trainers: SFT, reward model, CodeRL critic, PPO with execution reward, the pipeline."""
