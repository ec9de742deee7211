"""The HF Trainer + PEFT side of the benchmarks that train both ways (real_model.py,
table1_hf_cell.py): a Trainer fed tallrec-train's epoch orders on tallrec's token ids, and
TALLRec's scoring of prompts. Imported inside the worker process, after torch is set up."""
import torch
import transformers


def same_order_trainer(records, order, args, net, callbacks):
    """An HF Trainer over `records` (hf_reference.Records: tallrec's token ids) that visits them in
    `order`, one list of record indices an epoch (`tallrec-train batches`: transformers 4.28's
    sampler, the one TALLRec ran; today's Trainer would draw another), batched as TALLRec's
    DataCollatorForSeq2Seq does (left padding to a multiple of 8)."""

    class EpochOrder(torch.utils.data.Sampler):
        def __init__(self):
            self.epoch = 0

        def __len__(self):
            return len(order[0])

        def __iter__(self):
            rows = order[self.epoch % len(order)]
            self.epoch += 1
            return iter(rows)

    class SameOrderTrainer(transformers.Trainer):
        def _get_train_sampler(self, *unused, **unused_too):
            return EpochOrder()

    class RowIndices(torch.utils.data.Dataset):
        def __len__(self):
            return len(records.ids)

        def __getitem__(self, i):
            return i

    def collate(rows):
        ids, mask, lab = records.batch(rows)
        return {"input_ids": ids, "attention_mask": mask, "labels": lab}

    return SameOrderTrainer(model=net, args=args, train_dataset=RowIndices(), data_collator=collate,
                            callbacks=callbacks)


def tallrec_scores(net, prompts, yes, no, batch=32):
    """TALLRec's evaluate: softmax over the vocabulary at the last prompt position, then a softmax
    over [No, Yes]; prompts (token id lists) left-padded in batches of `batch`."""
    net.eval()
    scores = []
    with torch.no_grad():
        for at in range(0, len(prompts), batch):
            seqs = prompts[at:at + batch]
            width = max(map(len, seqs))
            ids = torch.tensor([[0] * (width - len(s)) + list(s) for s in seqs])
            mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
            pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
            logits = net(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1, :]
            p = torch.softmax(logits, -1)[:, [no, yes]]
            scores += torch.softmax(p, -1)[:, 1].tolist()
    net.train()
    return scores
