"""k-shot prompts through the chat template, and batched letter scoring against a direct forward pass."""

from __future__ import annotations

import pytest
import torch

from ftlab.engine.config.schema import DataConfig
from ftlab.engine.data.pipeline import make_renderer
from ftlab.engine.eval.prompts import PromptBuilder
from ftlab.engine.eval.scoring import letter_ids, score_batches
from ftlab.engine.eval.tasks import Question, Subject


@pytest.fixture(scope="module")
def tiny(tiny_model_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model_factory("tiny-llama")
    return (AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(),
            AutoTokenizer.from_pretrained(folder))


def test_prompt_is_the_chat_template_of_the_shots_and_question(tiny):
    _, tokenizer = tiny
    shot = Question("2 + 2 = ?", ("3", "4", "5", "6"), "B", "x")
    question = Question("3 + 3 = ?", ("6", "7", "8", "9"), "A", "y")
    subject = Subject("elementary_mathematics", "elementary mathematics", "STEM", dev=[shot, shot])
    builder = PromptBuilder(make_renderer(DataConfig(), tokenizer), tokenizer, "en")
    ids, shots = builder.build(question, subject)
    first = ("The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
             "2 + 2 = ?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:")
    messages = [{"role": "user", "content": first}, {"role": "assistant", "content": "B"},
                {"role": "user", "content": first.split("\n\n", 1)[1]}, {"role": "assistant", "content": "B"},
                {"role": "user", "content": "3 + 3 = ?\nA. 6\nB. 7\nC. 8\nD. 9\nAnswer:"}]
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert shots == 2 and tokenizer.decode(ids) == expected
    assert expected.endswith("Answer:<|im_end|>\n<|im_start|>assistant\n")
    # too long for max_length: shots are dropped from the end until it fits
    short = PromptBuilder(builder.renderer, tokenizer, "en", max_length=len(ids) - 1)
    fewer, used = short.build(question, subject)
    assert used == 1 and len(fewer) < len(ids)


def test_batched_letter_scores_equal_a_direct_forward_pass(tiny):
    model, tokenizer = tiny
    letters = letter_ids(tokenizer)
    assert [tokenizer.decode([i]) for i in letters] == ["A", "B", "C", "D"]
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(3, 1000, (n,), generator=gen).tolist() for n in (5, 17, 9, 30, 12, 3, 21)]
    got, batches = {}, 0
    for batches, scored in score_batches(model, prompts, letters, batch_size=3, pad_id=tokenizer.pad_token_id):
        got.update(scored)
    assert batches == 3 and sorted(got) == list(range(len(prompts)))
    with torch.inference_mode():
        for index, prompt in enumerate(prompts):
            direct = model(torch.tensor([prompt])).logits[0, -1, letters]
            torch.testing.assert_close(got[index], direct, atol=1e-4, rtol=1e-4)
            assert int(got[index].argmax()) == int(direct.argmax())


def test_fewshot_template_gives_plain_k_shot_text(tiny):
    """LlamaFactory's eval configs say `template: fewshot`: questions and answers, no chat markup."""
    _, tokenizer = tiny
    shot = Question("1 + 1 = ?", ("1", "2", "3", "4"), "B", "x")
    subject = Subject("elementary_mathematics", "elementary mathematics", "STEM", dev=[shot])
    builder = PromptBuilder(make_renderer(DataConfig(template="fewshot"), tokenizer), tokenizer, "zh")
    ids, _ = builder.build(Question("2 + 2 = ?", ("3", "4", "5", "6"), "B", "y"), subject)
    assert tokenizer.decode(ids) == ("以下是中国关于elementary mathematics考试的单项选择题，请选出其中的正确答案。\n\n"
                                     "1 + 1 = ?\nA. 1\nB. 2\nC. 3\nD. 4\n答案：B\n\n"
                                     "2 + 2 = ?\nA. 3\nB. 4\nC. 5\nD. 6\n答案：")


def test_model_adapter_is_merged_for_inference(tmp_path, tiny_model_factory):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from ftlab.engine.config.schema import Profile
    from ftlab.engine.eval.model import load_for_inference

    folder = tiny_model_factory("tiny-llama")
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)  # random B: not a no-op
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")
    profile = Profile.model_validate({"model": {"name_or_path": str(folder), "adapter": str(tmp_path / "adapter")}})
    model, _ = load_for_inference(profile, log=lambda *_: None)
    assert not isinstance(model, PeftModel)  # merged: plain linear layers
    x = torch.tensor([[5, 17, 99, 3, 250]])
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                                          tmp_path / "adapter").eval()
    plain = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.inference_mode():
        got, want, without = model(x).logits, reference(x).logits, plain(x).logits
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, without, atol=1e-3)
