import { memo } from 'react';
import type { ReceiptFacts } from '../../api';
import { Badge } from '../../components/ui';
import { footerFacts } from '../../lib/answerFooter';
import { useChatActions } from './context';

/** Under an answer: who answered, the route and channel, who paid and how
 * much, tokens and speed, any fallback in words. Opens the receipt. */
export const AnswerFooter = memo(function AnswerFooter({ receipt, asked }: { receipt: ReceiptFacts; asked: string | null }) {
  const { openReceipt } = useChatActions();
  const f = footerFacts(receipt, asked);
  return (
    <div
      className="answer-footer"
      data-testid="answer-footer"
      data-request-id={receipt.request_id}
      onClick={(e) => {
        // Selecting text in the footer is not a click on it.
        if (window.getSelection()?.toString()) return;
        if ((e.target as HTMLElement).closest('button')) return;
        openReceipt(receipt.request_id);
      }}
    >
      <span className="footer-line">
        <span className="footer-model" data-testid="footer-model" title="The upstream model that answered">
          {f.model}
        </span>
        {f.route ? <span className="muted">route {f.route}</span> : null}
        {f.channel ? <span className="muted">via {f.channel}</span> : null}
        <span className={`footer-bucket bucket-${f.bucket ?? 'none'}`} data-testid="footer-bucket" data-bucket={f.bucket ?? ''}>
          <span className={`bucket-dot bucket-${f.bucket ?? 'none'}`} aria-hidden="true" />
          {f.bucketLabel}
        </span>
        <span className="footer-cost num-left" data-testid="footer-cost">
          {f.unpriced ? (
            <Badge tone="warn" title="No price is known for this target; nothing was charged for it">
              unpriced
            </Badge>
          ) : (
            (f.cost ?? '—')
          )}
        </span>
        {f.estimated ? (
          <Badge tone="warn" title="The provider sent no usage; counted from the text seen" testId="footer-estimated">
            estimated
          </Badge>
        ) : null}
      </span>
      <span className="footer-line muted">
        <span data-testid="footer-tokens">{f.tokens}</span>
        {f.timing ? <span data-testid="footer-timing">{f.timing}</span> : null}
      </span>
      {f.walk ? (
        <span className="footer-walk" data-testid="footer-walk">
          {f.walk}
        </span>
      ) : null}
      <button
        type="button"
        className="btn-link footer-open small"
        onClick={() => openReceipt(receipt.request_id)}
        data-testid="footer-receipt"
        aria-label={`Open the receipt of this answer (${receipt.request_id})`}
      >
        Receipt ›
      </button>
    </div>
  );
});
